"""Un backup cuyo proceso murió (kill -9 de la CLI, corte de luz) no queda EN_PROCESO para siempre:
lo detectan /health, el siguiente backup, `limpiar` y el arranque, lo pasan a ERROR y avisan en ROJO.
Y un manifiesto que no se pudo escribir (disco lleno) no deja su `.parcial` de 0 bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inventario.modules.backup.files import TEMP_SUFFIX
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.repo import BackupRepo
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import bloquear_pg_dump, connect

H = dict[str, str]


def _estado(server: DatabaseServer, id_backup: int) -> tuple[str, str | None]:
    with connect(server) as conn:
        row = conn.execute(
            "SELECT estado, mensaje_error FROM historial_backup WHERE id_backup = %s", (id_backup,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _avisos_rojos(server: DatabaseServer, id_backup: int) -> int:
    with connect(server) as conn:
        row = conn.execute(
            "SELECT count(*) FROM notificaciones WHERE referencia_tipo = 'BACKUP' AND referencia_id = %s "
            "AND semaforo = 'ROJO'",
            (id_backup,),
        ).fetchone()
    return int(row[0]) if row else 0


def _en_proceso(server: DatabaseServer) -> list[int]:
    with connect(server) as conn:
        return [
            r[0] for r in conn.execute("SELECT id_backup FROM historial_backup WHERE estado = 'EN_PROCESO'")
        ]


def _cli_backup_muerto(cli_env: dict[str, str], server: DatabaseServer) -> int:
    """Una CLI `backup ejecutar` que se mata con kill -9 a mitad (pg_dump esperando un cerrojo)."""
    blocker = bloquear_pg_dump(server)
    exe = str(Path(sys.executable).with_name("inventario"))
    proc = subprocess.Popen([exe, "backup", "ejecutar", "--tipo", "COMPLETO"], env=cli_env)
    try:
        deadline = time.monotonic() + 120
        while not _en_proceso(server):
            assert time.monotonic() < deadline and proc.poll() is None, "el backup no empezó"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        blocker.rollback()  # el pg_dump huérfano sigue, escribe a una tubería rota y termina
        blocker.close()
    [id_backup] = _en_proceso(server)
    return id_backup


def test_cli_con_kill_9_lo_cierra_health_en_error_con_aviso_rojo(
    cli_env: dict[str, str], client: TestClient, admin_headers: H, fresh_db: DatabaseServer
) -> None:
    id_backup = _cli_backup_muerto(cli_env, fresh_db)
    assert client.get("/health").status_code == 200
    estado, mensaje = _estado(fresh_db, id_backup)
    assert estado == "ERROR" and mensaje is not None and "Interrumpido" in mensaje
    assert _avisos_rojos(fresh_db, id_backup) == 1
    # Y el siguiente backup corre: nada quedó "en curso".
    r = client.post("/api/v1/backup/ejecutar-completo?esperar=true", headers=admin_headers)
    assert r.status_code == 201, r.text
    assert _avisos_rojos(fresh_db, id_backup) == 1  # un solo aviso por backup interrumpido


def _fila_huerfana(runtime: Runtime) -> int:
    """La fila que deja un proceso muerto: EN_PROCESO y nadie con el cerrojo (como tras un kill -9)."""
    with connect(runtime.server) as conn:
        row = conn.execute(
            "INSERT INTO historial_backup (tipo, nombre_archivo, ruta_archivo, estado, ejecutado_por) "
            "VALUES ('COMPLETO', 'backup_20200101_000000_FULL.sql.gz', '/x', 'EN_PROCESO', 'cli') "
            "RETURNING id_backup"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("quien", ["siguiente backup", "limpiar", "arranque"])
def test_lo_detectan_el_siguiente_backup_limpiar_y_el_arranque(
    runtime: Runtime, fresh_db: DatabaseServer, quien: str
) -> None:
    huerfana = _fila_huerfana(runtime)
    service = BackupService(runtime, notifier=notify)
    if quien == "siguiente backup":
        assert service.run("COMPLETO", "prueba").estado == "COMPLETADO"
    elif quien == "limpiar":
        service.cleanup()
    else:
        assert service.recover()["interrumpidos"] == 1
    assert _estado(fresh_db, huerfana)[0] == "ERROR"
    assert _avisos_rojos(fresh_db, huerfana) == 1


def test_un_backup_en_curso_de_verdad_no_se_toca(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    blocker = bloquear_pg_dump(fresh_db)
    service = BackupService(runtime, notifier=notify)
    thread = threading.Thread(target=lambda: service.run("COMPLETO", "prueba"))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not _en_proceso(fresh_db):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert service.close_stale() == []
        assert len(_en_proceso(fresh_db)) == 1
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT estado FROM historial_backup").fetchone() == ("COMPLETADO",)


def test_manifiesto_con_disco_lleno_no_deja_parcial(disco_pequeno: Path) -> None:
    repo = BackupRepo(disco_pequeno)
    repo.ensure()
    relleno = disco_pequeno / "relleno"
    fd = os.open(relleno, os.O_WRONLY | os.O_CREAT, 0o600)  # llenar el disco de verdad
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    manifest = Manifiesto(
        id_backup=1,
        tipo="COMPLETO",
        nombre_archivo="backup_20250101_000000_FULL.sql.gz",
        hash_md5="0" * 32,
        tamanio_bytes=1,
        tamanio_sin_comprimir=1,
        fecha_creacion=datetime.now(UTC),
        fecha_instantanea=datetime.now(UTC),
        fecha_corte=datetime.now(UTC),
        duracion_segundos=0.1,
        ejecutado_por="prueba",
        revision_esquema=None,
        huella_esquema="x",
        version_servidor="17",
        tablas=[],
    )
    with pytest.raises(OSError):
        repo.write_manifest(manifest)
    assert not [p.name for p in disco_pequeno.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    assert sorted(p.name for p in disco_pequeno.iterdir()) == ["relleno"]
