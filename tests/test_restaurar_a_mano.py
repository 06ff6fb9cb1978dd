"""El README, "Restaurar a mano": sus bloques se ejecutan tal cual (con bash, desde la carpeta del
servicio) contra un `inventario serve` con el PostgreSQL embebido, y la base restaurada es igual a
la del servicio. Lo único que cambia son los nombres de ejemplo de los archivos, por los reales."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inventario.postgres import DatabaseServer, sqlalchemy_url
from tests.backup_support import snapshot
from tests.conftest import ADMIN_PASSWORD
from tests.servicio_support import servicio

RAIZ = Path(__file__).resolve().parents[1]
MARCA = "<!-- prueba: tests/test_restaurar_a_mano.py ejecuta este bloque tal cual -->"
FULL, DIFF = "backup_20251201_030000_FULL.sql.gz", "backup_20251203_030000_DIFF.sql.gz"


def bloques_del_readme() -> list[str]:
    texto = (RAIZ / "README.md").read_text()
    return [m.group(1) for m in re.finditer(re.escape(MARCA) + r"\n```bash\n(.*?)```", texto, re.S)]


@pytest.fixture
def instalacion() -> Iterator[Path]:
    """Una carpeta como la de un servicio instalado: `.venv` (el de las pruebas), datos, backups."""
    home = Path(tempfile.mkdtemp(prefix="inventario-readme-"))
    os.chmod(home, 0o755)  # el postmaster embebido corre como otro usuario si somos root
    (home / ".venv").symlink_to(Path(sys.executable).parent.parent)
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def embebido(home: Path, base: str) -> DatabaseServer:
    url = f"postgresql://postgres@/{base}?host={home / 'data' / 'pgdata'}"
    return DatabaseServer(sqlalchemy_url(url), embedded=False)


def test_los_comandos_del_readme_restauran_exacto(instalacion: Path) -> None:
    bloques = bloques_del_readme()
    assert len(bloques) == 2 and FULL in bloques[0] and DIFF in bloques[0] and "--destino" in bloques[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PG_BIN_DIR", "PGHOST", "PGUSER")}
    env.update(INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD, BACKUP_ENABLED="false")
    with servicio(env, "--sin-scheduler", cwd=instalacion) as srv:
        h = {
            "Authorization": "Bearer "
            + httpx.post(
                srv.url + "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
            ).json()["access_token"]
        }
        api = srv.url + "/api/v1"
        for i in range(5):
            p = httpx.post(
                f"{api}/productos", json={"codigo": f"P-{i}", "nombre": f"Producto {i}"}, headers=h
            )
            assert p.status_code == 201, p.text
            httpx.post(
                f"{api}/lotes",
                json={"id_producto": p.json()["id_producto"], "codigo_lote": f"L{i}", "cantidad": 10 + i},
                headers=h,
            )
        full = httpx.post(f"{api}/backup/ejecutar-completo?esperar=true", headers=h, timeout=120)
        assert full.status_code == 201, full.text
        httpx.post(f"{api}/movimientos", json={"tipo": "SALIDA", "id_producto": 1, "cantidad": 3}, headers=h)
        httpx.patch(f"{api}/productos/2", json={"nombre": "Producto dos, renombrado"}, headers=h)
        diff = httpx.post(f"{api}/backup/ejecutar-diferencial?esperar=true", headers=h, timeout=120)
        assert diff.status_code == 201 and diff.json()["tipo"] == "DIFERENCIAL", diff.text
        nombres = {FULL: full.json()["nombre_archivo"], DIFF: diff.json()["nombre_archivo"]}
        # La base en el instante del diferencial: su propio aviso ("Backup DIFERENCIAL completado")
        # se escribe después y no va en él.
        esperado = snapshot(embebido(instalacion, "inventario"))
        esperado["notificaciones"] = [n for n in esperado["notificaciones"] if "DIFERENCIAL" not in n]
        esperado["__secuencias__"] = sin_secuencia_de_avisos(esperado["__secuencias__"])

        for n, bloque in enumerate(bloques, 1):
            for ejemplo, real in nombres.items():
                bloque = bloque.replace(ejemplo, real)
            r = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", bloque],
                cwd=instalacion,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert r.returncode == 0, f"bloque {n}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
            if n == 1:
                # psql en silencio: sin los cientos de líneas de setval y etiquetas de órdenes.
                assert len(r.stdout.splitlines()) <= 5, r.stdout[:2000]
        for base in ("restaurada", "restaurada_2"):
            restaurada = snapshot(embebido(instalacion, base))
            restaurada["__secuencias__"] = sin_secuencia_de_avisos(restaurada["__secuencias__"])
            assert restaurada == esperado, base


def sin_secuencia_de_avisos(secuencias: list[tuple]) -> list[tuple]:
    return [s for s in secuencias if s[0] != "notificaciones_id_notificacion_seq"]
