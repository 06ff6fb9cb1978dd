"""Pruebas contra un PostgreSQL real: el embebido (pgserver) o `DATABASE_URL`.

Una base plantilla migrada una vez por sesión; cada prueba recibe una base nueva copiada de ella.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from inventario import migrations
from inventario.config import Settings
from inventario.database import make_engine
from inventario.postgres import DatabaseServer, libpq_params, sqlalchemy_url, start_embedded

ADMIN_PASSWORD = "admin-secreto-1"
TEMPLATE = "inventario_plantilla"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    url = os.environ.get("DATABASE_URL")
    if url:
        server = DatabaseServer(sqlalchemy_url(url), embedded=False)
    else:
        server = start_embedded(tmp_path_factory.mktemp("pg"))
    admin = server.with_database("postgres")
    drop_database(admin, TEMPLATE)
    create_database(admin, TEMPLATE)
    engine = make_engine(server.with_database(TEMPLATE).url, poolclass=None)
    migrations.upgrade(engine)
    engine.dispose()
    yield server
    drop_database(admin, TEMPLATE)
    server.stop()


def admin_conn(server: DatabaseServer) -> psycopg.Connection:
    conninfo, env = libpq_params(server.with_database("postgres").url)
    return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True)


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
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=None,
        DATA_PATH=str(tmp_path / "data"),
        BACKUP_PATH=str(tmp_path / "backups"),
        LOGS_PATH=str(tmp_path / "logs"),
        SECRET_KEY="clave-de-pruebas-" + "x" * 32,
        INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEALTH_DISCO_MIN_MB=0,
    )


@pytest.fixture
def engine(fresh_db: DatabaseServer) -> Iterator[Engine]:
    eng = make_engine(fresh_db.url)
    yield eng
    eng.dispose()


@pytest.fixture
def client(settings: Settings, fresh_db: DatabaseServer) -> Iterator[TestClient]:
    from inventario.main import create_app

    app = create_app(settings, server=fresh_db, with_scheduler=False)
    with TestClient(app) as test_client:
        yield test_client


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/login", json={"nombre_usuario": username, "password": password}
    )
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
