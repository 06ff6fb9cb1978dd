"""Secretos fuera del alcance de otros usuarios locales: la contraseña de PostgreSQL nunca en la
línea de comandos de un proceso (visible en `ps` y /proc/*/cmdline para todos)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from inventario.arranque import url_sin_clave
from inventario.config import Settings
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer, libpq_params, sqlalchemy_url
from inventario.runtime import open_runtime
from tests.backup_support import bloquear_pg_dump

CLAVE = "clave-pg-que-nadie-debe-ver-7Q"


def test_libpq_params_deja_la_clave_solo_en_el_entorno() -> None:
    url = sqlalchemy_url(f"postgresql://inventario:{CLAVE}@db.local:5433/tienda?sslmode=require")
    conninfo, env = libpq_params(url)
    assert conninfo == "postgresql://inventario@db.local:5433/tienda?sslmode=require"
    assert env["PGPASSWORD"] == CLAVE
    assert CLAVE not in url_sin_clave(url)


def _cmdlines() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
                )
            except OSError:
                continue
    return found


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "no se cumplió a tiempo"
        time.sleep(0.05)


def test_la_clave_no_aparece_en_cmdline_mientras_corre_pg_dump(
    settings: Settings, fresh_db: DatabaseServer
) -> None:
    # El embebido acepta la conexión por socket sin mirar la clave: basta con que la URL la lleve,
    # como la llevaría un DATABASE_URL externo.
    with_password = DatabaseServer(fresh_db.url.set(password=CLAVE), fresh_db.embedded, fresh_db.bin_dir_hint)
    runtime = open_runtime(settings, with_password, migrate=False)
    blocker = bloquear_pg_dump(fresh_db)  # pg_dump queda esperando su cerrojo: se le puede mirar
    thread = threading.Thread(target=lambda: BackupService(runtime).run("COMPLETO", "PRUEBA"))
    thread.start()
    try:
        _wait_for(lambda: any("pg_dump" in c and "--snapshot" in c for c in _cmdlines().values()))
        lines = _cmdlines()
        dumps = [c for c in lines.values() if "pg_dump" in c and "--snapshot" in c]
        assert dumps and all("inventario" in c or "postgres" in c for c in dumps)
        assert not [c for c in lines.values() if CLAVE in c]
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
        runtime.close()
