"""El servidor PostgreSQL del servicio: el de `DATABASE_URL` o el embebido (pgserver).

Aquí se decide una sola vez qué URL usa SQLAlchemy, qué parámetros libpq usan pg_dump/psql
(la contraseña va por entorno, nunca en la línea de comandos) y dónde están esos binarios.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from inventario.config import Settings
from inventario.logging_setup import redact
from inventario.procesos import pid_alive

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "inventario"


class PgToolsError(RuntimeError):
    """No hay pg_dump/psql utilizables para este servidor."""


@dataclass
class PgTools:
    bin_dir: Path
    major: int

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)


@dataclass
class DatabaseServer:
    url: URL  # para SQLAlchemy (driver psycopg)
    embedded: bool
    bin_dir_hint: Path | None = None  # binarios que vienen con el servidor embebido
    _handle: object | None = field(default=None, repr=False)

    @property
    def database(self) -> str:
        return self.url.database or ""

    def with_database(self, name: str) -> DatabaseServer:
        return DatabaseServer(self.url.set(database=name), self.embedded, self.bin_dir_hint)

    def libpq(self, database: str | None = None) -> tuple[str, dict[str, str]]:
        """(conninfo sin contraseña, entorno con PGPASSWORD) para los clientes de PostgreSQL."""
        return libpq_params(self.url.set(database=database) if database else self.url)

    def connect(
        self,
        *,
        autocommit: bool = True,
        connect_timeout: int | None = None,
        application_name: str | None = None,
    ) -> psycopg.Connection:
        """La conexión psycopg directa (cerrojos, pg_catalog, restauración, pruebas): la única forma
        de abrirla; la contraseña va como parámetro, nunca en el conninfo."""
        conninfo, env = self.libpq()
        # psycopg omite los parámetros None: sin application_name, el de siempre.
        return psycopg.connect(
            conninfo,
            password=env.get("PGPASSWORD"),
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=application_name,
        )

    def stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            handle.cleanup()  # type: ignore[attr-defined]  # pgserver no publica tipos
        except Exception as exc:
            # P. ej. el postmaster ya murió (kill -9, OOM): detenerlo no debe tapar el error de la
            # orden en curso (se mostraba "No arrancó el PostgreSQL embebido" en vez del fallo real).
            log.warning("El PostgreSQL embebido ya no estaba en marcha al detenerlo: %s", exc)


def sqlalchemy_url(raw: str) -> URL:
    url = make_url(raw.replace("postgres://", "postgresql://", 1))
    return url.set(drivername="postgresql+psycopg")


def libpq_params(url: URL) -> tuple[str, dict[str, str]]:
    """(conninfo sin contraseña, entorno con PGPASSWORD).

    La conninfo acaba en la línea de comandos de pg_dump/psql, que cualquier usuario local ve en
    `ps`: la contraseña solo viaja por el entorno (/proc/PID/environ es privado del dueño).
    """
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return without_password(url).render_as_string(hide_password=False), env


# Lo que libpq dice en inglés al no poder conectar → lo mismo en español (la primera que coincide).
_CONNECTION_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), text)
    for pattern, text in (
        (
            r'database "([^"]+)" does not exist',
            "la base {0} no existe en ese servidor: créela antes (CREATE DATABASE {0};)",
        ),
        (r'password authentication failed for user "([^"]+)"', "usuario o clave incorrectos para {0}"),
        (r'role "([^"]+)" does not exist', "el usuario {0} no existe en ese servidor"),
        (r"no password supplied|fe_sendauth", "el servidor pide una clave y la URL no la trae"),
        (
            r"Connection refused",
            "el servidor no acepta conexiones ahí (¿está en marcha y escucha en esa dirección y puerto?)",
        ),
        (
            r"No such file or directory",
            "no hay ningún servidor en ese socket (¿está en marcha? ¿es la carpeta correcta?)",
        ),
        (r"could not translate host name", "no se encuentra el servidor con ese nombre"),
        (r"timeout expired|timed out", "el servidor no respondió a tiempo"),
        (r"too many connections|remaining connection slots", "el servidor no admite más conexiones ahora"),
        (
            r"no pg_hba\.conf entry",
            "el servidor no permite conectarse desde aquí con ese usuario (pg_hba.conf)",
        ),
        (
            r"the database system is (starting up|shutting down)",
            "el servidor está arrancando o deteniéndose; reintente",
        ),
    )
)


def describe_connection_error(exc: BaseException) -> str:
    """Por qué no se pudo conectar, en español; si no se reconoce, la primera línea de libpq."""
    message = str(exc)
    for pattern, text in _CONNECTION_ERRORS:
        found = pattern.search(message)
        if found:
            return text.format(*found.groups())
    first = next((line.strip() for line in message.splitlines() if line.strip()), exc.__class__.__name__)
    # El texto de libpq tal cual: sin nada que parezca una clave (sale por consola y a los logs).
    return f"no se pudo conectar ({redact(first)})"


def without_password(url: URL) -> URL:
    """La URL libpq sin contraseña (`URL.set(password=None)` no la quita: None es "sin cambio")."""
    return URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)


def start_embedded(data_dir: Path) -> DatabaseServer:
    """Arranca (o reutiliza) el PostgreSQL embebido cuyos datos viven en `data_dir/pgdata`."""
    # pgserver guarda su cerrojo en XDG_RUNTIME_DIR, que debe existir antes de importarlo.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"inventario-{os.getuid()}"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver  # importación tardía: solo hace falta sin DATABASE_URL

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(data_dir / "pgdata")
    # El postmaster lo arranca pgserver en segundo plano y se detiene al salir (cleanup_mode="stop").
    handle = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    bin_dir = Path(pgserver_bin_dir())
    admin = DatabaseServer(make_url(handle.get_uri()).set(drivername="postgresql+psycopg"), True, bin_dir)
    ensure_database(admin, EMBEDDED_DB_NAME)
    return DatabaseServer(admin.url.set(database=EMBEDDED_DB_NAME), True, bin_dir, handle)


def _forget_dead_handles(pgdata: Path) -> None:
    """Olvida los procesos muertos de la lista de dueños del postmaster.

    pgserver apaga el postmaster cuando sale el último proceso de `.handle_pids.json`. Tras un
    `kill -9` el muerto queda en la lista: el servicio reiniciado adopta el postmaster huérfano y,
    al salir, no se creía el último, así que lo dejaba corriendo. (Se usa el cerrojo del propio
    pgserver, el mismo con el que él lee y escribe esa lista.)
    """
    from pgserver.postgres_server import PostgresServer

    path = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        if not path.exists():
            return
        try:
            pids = [int(p) for p in json.loads(path.read_text())]
        except (ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if pid_alive(pid)]
        if alive != pids:
            log.warning(
                "PostgreSQL embebido: se olvidan dueños que ya no existen (%s)",
                sorted(set(pids) - set(alive)),
            )
            path.write_text(json.dumps(alive))


def pgserver_bin_dir() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def ensure_database(server: DatabaseServer, name: str) -> None:
    with server.with_database("postgres").connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def start_server(settings: Settings) -> DatabaseServer:
    if settings.DATABASE_URL:
        return DatabaseServer(sqlalchemy_url(settings.DATABASE_URL), embedded=False)
    return start_embedded(settings.data_dir)


_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)")


def client_major(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = _VERSION_RE.search(out)
    if not match:
        raise PgToolsError(f"No se pudo leer la versión de {binary}: {out.strip()!r}")
    return int(match.group(1))


def locate_pg_tools(server: DatabaseServer, server_major: int, pg_bin_dir: str | None) -> PgTools:
    """Encuentra pg_dump y psql cuya versión mayor sea al menos la del servidor.

    Orden: los binarios del servidor embebido; si no, PG_BIN_DIR; si no, el PATH.
    """
    if server.embedded and server.bin_dir_hint is not None:
        candidates = [("servidor embebido", server.bin_dir_hint)]
    elif pg_bin_dir:
        candidates = [("PG_BIN_DIR", Path(pg_bin_dir))]
    else:
        found = shutil.which("pg_dump")
        candidates = [("PATH", Path(found).absolute().parent)] if found else []
    if not candidates:
        raise PgToolsError(
            "No se encontró pg_dump en el PATH. Instale el cliente de PostgreSQL "
            f"{server_major} o superior, o indique su carpeta en PG_BIN_DIR."
        )
    origin, bin_dir = candidates[0]
    for tool in ("pg_dump", "psql"):
        if not (bin_dir / tool).exists():
            raise PgToolsError(f"No existe {bin_dir / tool} (origen: {origin}).")
    major = client_major(str(bin_dir / "pg_dump"))
    psql_major = client_major(str(bin_dir / "psql"))
    lowest = min(major, psql_major)
    if lowest < server_major:
        raise PgToolsError(
            f"Versión incompatible: el servidor es PostgreSQL {server_major} y pg_dump/psql de "
            f"{bin_dir} (origen: {origin}) son versión {lowest}. pg_dump no puede respaldar un "
            f"servidor más nuevo que él. Instale el cliente de PostgreSQL {server_major} o superior "
            f"(p. ej. postgresql-client-{server_major}) y apunte PG_BIN_DIR a su carpeta bin."
        )
    return PgTools(bin_dir=bin_dir, major=lowest)
