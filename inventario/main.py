"""La aplicación FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from inventario import __version__
from inventario.config import Settings, get_settings
from inventario.errors import install_handlers
from inventario.logging_setup import setup_logging
from inventario.modules.backup.notifications import notify as notify_backup
from inventario.modules.backup.service import BackupService
from inventario.modules.jobs.scheduler import Planificador, health_without_scheduler
from inventario.postgres import DatabaseServer
from inventario.runtime import announce_first_admin, open_runtime

def include_routers(app: FastAPI) -> None:
    from inventario.modules.salud.router import router as salud
    from inventario.modules.usuarios.router import auth_router, router as usuarios

    for router in (salud, auth_router, usuarios):
        app.include_router(router)
    for optional in (
        "inventario.modules.productos.router",
        "inventario.modules.lotes.router",
        "inventario.modules.movimientos.router",
        "inventario.modules.notificaciones.router",
        "inventario.modules.backup.router",
        "inventario.modules.jobs.router",
    ):
        try:
            module = __import__(optional, fromlist=["router"])
        except ModuleNotFoundError as exc:
            if exc.name != optional:
                raise
            continue
        app.include_router(module.router)


def create_app(
    settings: Settings | None = None,
    server: DatabaseServer | None = None,
    *,
    with_scheduler: bool = True,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.logs_dir, settings.LOG_LEVEL)
        runtime = open_runtime(settings, server)
        app.state.runtime = runtime
        app.state.settings = settings
        app.state.engine = runtime.engine
        app.state.session_factory = runtime.session_factory
        app.state.secret_key = settings.secret_key()
        app.state.with_scheduler = with_scheduler
        announce_first_admin(runtime)
        BackupService(runtime, notifier=notify_backup).recover()
        scheduler = None
        if with_scheduler:
            scheduler = Planificador(runtime)
            scheduler.start()
            app.state.scheduler_info = scheduler.info
        else:
            app.state.scheduler_info = health_without_scheduler(runtime)
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()  # espera a los jobs en curso antes de cerrar la base
            runtime.close()

    app = FastAPI(
        title="Inventario",
        version=__version__,
        description="Inventario con backups que restauran exactamente, logs que se cuidan solos y alertas.",
        lifespan=lifespan,
    )
    install_handlers(app)
    include_routers(app)
    return app
