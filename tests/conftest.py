"""Pruebas contra un PostgreSQL real: el embebido (pgserver) o `DATABASE_URL`.

Una base plantilla migrada una vez por sesión; cada prueba recibe una base nueva copiada de ella.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from inventario import migrations
from inventario.config import Settings
from inventario.database import make_engine
from inventario.logging_setup import isolated_logging
from inventario.postgres import DatabaseServer, sqlalchemy_url, start_embedded

if TYPE_CHECKING:
    import subprocess

    from inventario.runtime import Runtime

ADMIN_PASSWORD = "admin-secreto-1"
TEMPLATE = "inventario_plantilla"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[DatabaseServer]:
    url = os.environ.get("DATABASE_URL")
    home: str | None = None
    if url:
        server = DatabaseServer(sqlalchemy_url(url), embedded=False)
    else:
        # Fuera de /tmp/pytest-of-root: otra sesión de pytest lo pone en 0700 y el postmaster
        # (usuario pgserver) dejaría de ver sus datos.
        home = tempfile.mkdtemp(prefix="inventario-pg-")
        os.chmod(home, 0o755)
        server = start_embedded(Path(home))
    admin = server.with_database("postgres")
    drop_database(admin, TEMPLATE)
    create_database(admin, TEMPLATE)
    engine = make_engine(server.with_database(TEMPLATE).url, poolclass=None)
    migrations.upgrade(engine)
    engine.dispose()
    # Una corrida cortada con SIGTERM (p. ej. `timeout`) también apaga su PostgreSQL: pytest
    # trata KeyboardInterrupt ejecutando los finalizadores.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield server
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            drop_database(admin, TEMPLATE)
        finally:
            server.stop()
            if home:
                shutil.rmtree(home, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"señal {signum}")


def admin_conn(server: DatabaseServer) -> psycopg.Connection:
    return server.with_database("postgres").connect()


def create_database(server: DatabaseServer, name: str, template: str | None = None) -> None:
    with admin_conn(server) as conn:
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}" STRATEGY FILE_COPY'
        conn.execute(sql)


def drop_database(server: DatabaseServer, name: str) -> None:
    with admin_conn(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(pg_server: DatabaseServer) -> Iterator[DatabaseServer]:
    """Una base nueva, migrada, solo para esta prueba."""
    name = f"prueba_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    create_database(pg_server, name, TEMPLATE)
    yield pg_server.with_database(name)
    drop_database(pg_server, name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        DATABASE_URL=None,
        DATA_PATH=str(tmp_path / "data"),
        BACKUP_PATH=str(tmp_path / "backups"),
        LOGS_PATH=str(tmp_path / "logs"),
        SECRET_KEY="clave-de-pruebas-" + "x" * 32,
        INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEALTH_DISCO_MIN_MB=0,
    )


@pytest.fixture
def engine(fresh_db: DatabaseServer, settings: Settings) -> Iterator[Engine]:
    # La misma zona que el servicio: CURRENT_DATE de las pruebas es el "hoy" de la tienda, que
    # difiere del de UTC unas horas cada noche (la CI de c90482a falló así pasada la medianoche UTC).
    eng = make_engine(fresh_db.url, settings.ZONA_HORARIA)
    yield eng
    eng.dispose()


@pytest.fixture
def client(settings: Settings, fresh_db: DatabaseServer) -> Iterator[TestClient]:
    from inventario.main import create_app

    app = create_app(settings, server=fresh_db, with_scheduler=False)
    with TestClient(app) as test_client:
        yield test_client


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"nombre_usuario": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def admin_headers(client: TestClient) -> dict[str, str]:
    return login(client, "admin", ADMIN_PASSWORD)


@pytest.fixture
def operador_headers(client: TestClient, admin_headers: dict[str, str]) -> dict[str, str]:
    response = client.post(
        "/api/v1/usuarios",
        json={"nombre_usuario": "operador1", "password": "operador-secreto", "rol": "OPERADOR"},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    return login(client, "operador1", "operador-secreto")


@pytest.fixture
def runtime(settings: Settings, fresh_db: DatabaseServer) -> Iterator[Runtime]:
    """El runtime de la CLI/servicio sobre la base de la prueba (sin arrancar otro servidor)."""
    from inventario.runtime import open_runtime

    rt = open_runtime(settings, fresh_db, migrate=False)
    yield rt
    rt.close()


@pytest.fixture
def cli_env(settings: Settings, fresh_db: DatabaseServer) -> dict[str, str]:
    """Entorno para ejecutar la consola `inventario` real contra la base de la prueba."""
    from inventario.postgres import pgserver_bin_dir

    env = dict(os.environ)
    env.update(
        DATABASE_URL=fresh_db.url.render_as_string(hide_password=False),
        PG_BIN_DIR=str(pgserver_bin_dir()) if fresh_db.embedded else env.get("PG_BIN_DIR", ""),
        BACKUP_PATH=settings.BACKUP_PATH,
        LOGS_PATH=settings.LOGS_PATH,
        DATA_PATH=settings.DATA_PATH,
        SECRET_KEY=str(settings.SECRET_KEY),
        INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    if not env["PG_BIN_DIR"]:
        env.pop("PG_BIN_DIR")
    return env


def run_cli(
    env: dict[str, str], *args: str, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("inventario")
    return subprocess.run(
        [str(exe), *args], env=env, input=input, capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture
def disco_pequeno(tmp_path: Path) -> Iterator[Path]:
    small = tmp_path / "pequeno"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"no se puede montar un tmpfs pequeño: {mounted.stderr.decode().strip()}")
    try:
        yield small
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """El lifespan y setup_logging() configuran el logging del proceso: al terminar, como estaba."""
    with isolated_logging():
        yield


def aplicacion(client: TestClient) -> FastAPI:
    """La aplicación FastAPI de un TestClient (`client.app` está tipado como una app ASGI cualquiera)."""
    assert isinstance(client.app, FastAPI)
    return client.app
