"""Arranque compartido por el servicio, la CLI y las pruebas: servidor, motor y migraciones."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from inventario import migrations
from inventario.config import Settings
from inventario.database import make_engine, make_session_factory
from inventario.permisos import secure_service_paths
from inventario.postgres import DatabaseServer, PgTools, locate_pg_tools, start_server

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    server: DatabaseServer
    engine: Engine
    session_factory: sessionmaker[Session]
    owns_server: bool = True
    _tools: PgTools | None = field(default=None, repr=False)

    def pg_tools(self) -> PgTools:
        """pg_dump/psql adecuados para este servidor; se buscan una sola vez."""
        if self._tools is None:
            with self.engine.connect() as conn:
                version_num = int(conn.execute(text("SHOW server_version_num")).scalar_one())
            self._tools = locate_pg_tools(self.server, version_num // 10000, self.settings.PG_BIN_DIR)
        return self._tools

    def close(self) -> None:
        self.engine.dispose()
        if self.owns_server:
            self.server.stop()


def open_runtime(
    settings: Settings, server: DatabaseServer | None = None, *, migrate: bool = True
) -> Runtime:
    owns = server is None
    server = server or start_server(settings)
    # Después de arrancar el embebido: pgserver (como root) abre los permisos de DATA_PATH.
    secure_service_paths(settings)
    engine = make_engine(server.url, settings.ZONA_HORARIA)
    runtime = Runtime(settings, server, engine, make_session_factory(engine), owns_server=owns)
    if migrate:
        migrations.upgrade(engine)
    return runtime


def announce_first_admin(runtime: Runtime) -> None:
    from inventario.modules.usuarios.service import ensure_first_admin

    with runtime.session_factory() as session:
        generated = ensure_first_admin(session, runtime.settings.INVENTARIO_ADMIN_PASSWORD)
    if generated:
        # Solo a la consola, una vez: nunca a un archivo de log.
        print(
            "\n*** Usuario inicial creado: admin / contraseña: "
            f"{generated}\n*** Guárdela ahora: no se volverá a mostrar.\n",
            file=sys.stderr,
            flush=True,
        )
