"""El entorno de un benchmark: PostgreSQL embebido propio en una carpeta temporal, datos de
`inventario demo` y el servicio real en un subproceso. Todo se borra al terminar."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from inventario.config import Settings
from inventario.demo import generate
from inventario.postgres import DatabaseServer, start_embedded
from inventario.runtime import Runtime, open_runtime

ADMIN_PASSWORD = "bench-admin-123"


@dataclass
class Entorno:
    home: Path
    server: DatabaseServer
    runtime: Runtime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def connect(self, database: str | None = None) -> psycopg.Connection:
        return (self.server.with_database(database) if database else self.server).connect()

    def new_database(self, name: str) -> DatabaseServer:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.server.with_database(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def env(self) -> dict[str, str]:
        """Entorno para la consola `inventario` y el servicio contra esta base."""
        from inventario.postgres import pgserver_bin_dir

        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.server.url.render_as_string(hide_password=False),
            PG_BIN_DIR=str(pgserver_bin_dir()),
            BACKUP_PATH=self.settings.BACKUP_PATH,
            LOGS_PATH=self.settings.LOGS_PATH,
            DATA_PATH=self.settings.DATA_PATH,
            SECRET_KEY=str(self.settings.SECRET_KEY),
            INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
            LOG_LEVEL="WARNING",
        )
        return env

    def close(self) -> None:
        self.runtime.close()
        self.server.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def crear(productos: int, lotes: int, movimientos: int, log: Callable[[str], object] = print) -> Entorno:
    home = Path(tempfile.mkdtemp(prefix="inventario-bench-"))
    os.chmod(home, 0o755)
    server = start_embedded(home / "pg")
    settings = Settings(
        _env_file=None,
        DATA_PATH=str(home / "data"),
        BACKUP_PATH=str(home / "backups"),
        LOGS_PATH=str(home / "logs"),
        SECRET_KEY="bench-" + "k" * 40,
        INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEALTH_DISCO_MIN_MB=0,
    )
    runtime = open_runtime(settings, server)
    _poblar(runtime, server, productos, lotes, movimientos, log)
    return Entorno(home, server, runtime)


def _poblar(
    runtime: Runtime,
    server: DatabaseServer,
    productos: int,
    lotes: int,
    movimientos: int,
    log: Callable[[str], object],
) -> None:
    """Los datos de `inventario demo` (semilla fija), en disco y con estadísticas."""
    from inventario.runtime import announce_first_admin

    announce_first_admin(runtime)
    started = time.perf_counter()
    counts = generate(runtime.engine, productos, lotes, movimientos, seed=1234)
    log(f"datos: {counts} en {time.perf_counter() - started:.1f} s")
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    with server.connect() as conn:
        conn.execute("VACUUM ANALYZE")


def base_aparte(
    ent: Entorno,
    name: str,
    productos: int,
    lotes: int,
    movimientos: int,
    log: Callable[[str], object] = print,
) -> Entorno:
    """Otra base del mismo servidor, con sus datos y su carpeta de backups, vista como un `Entorno`
    (para medir a otro tamaño con las mismas funciones). Se cierra con `cerrar_base_aparte`."""
    home = ent.home / name
    home.mkdir()
    server = ent.new_database(name)
    settings = ent.settings.model_copy(
        update={"BACKUP_PATH": str(home / "backups"), "DATA_PATH": str(home / "data")}
    )
    runtime = open_runtime(settings, server)
    _poblar(runtime, server, productos, lotes, movimientos, log)
    return Entorno(home, server, runtime)


def cerrar_base_aparte(ent: Entorno, aparte: Entorno) -> None:
    aparte.runtime.close()
    ent.drop_database(aparte.server.database)
    shutil.rmtree(aparte.home, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Servicio:
    """`inventario serve --sin-scheduler` real, en su propio proceso (`workers`: `--workers N`)."""

    def __init__(self, entorno: Entorno, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("inventario")
        self.log = open(entorno.home / f"servicio-{self.port}.out", "wb")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--sin-scheduler", "--port", str(self.port), "--workers", str(workers)],
            env=entorno.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=entorno.home,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("el servicio no arrancó; ver " + self.log.name)
            time.sleep(0.2)
        # Con --workers N, /health responde en cuanto arranca el primero; el aviso sale con todos.
        while b"Inventario en marcha" not in Path(self.log.name).read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("el servicio no arrancó; ver " + self.log.name)
            time.sleep(0.2)
        response = httpx.post(
            self.url + "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
