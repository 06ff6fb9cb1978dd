"""La aplicación FastAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

from inventario import __version__
from inventario.arranque import describir_fallo
from inventario.config import Settings, get_settings
from inventario.errors import install_handlers
from inventario.logging_setup import setup_logging
from inventario.modules.backup import router as backup
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.service import BackupService
from inventario.modules.consola import router as consola
from inventario.modules.envios import router as envios
from inventario.modules.envios.service import Despachador
from inventario.modules.lotes import router as lotes
from inventario.modules.metricas import router as metricas
from inventario.modules.metricas.service import ColectorBase, MetricasHTTP
from inventario.modules.movimientos import router as movimientos
from inventario.modules.notificaciones import router as notificaciones
from inventario.modules.planificador import router as jobs
from inventario.modules.planificador.scheduler import Scheduler, health_from_parent, health_without_scheduler
from inventario.modules.productos import router as productos
from inventario.modules.remoto import router as remoto
from inventario.modules.remoto.rclone import stop_daemons
from inventario.modules.salud import router as salud
from inventario.modules.usuarios import router as usuarios
from inventario.openapi import completar
from inventario.postgres import DatabaseServer
from inventario.request_limits import RequestLimits
from inventario.runtime import Runtime, announce_first_admin, open_runtime

if TYPE_CHECKING:
    from inventario.supervisor import Principal

log = logging.getLogger(__name__)


def include_routers(app: FastAPI) -> None:
    app.state.rutas_literales = {}
    for router in (
        salud.router,
        usuarios.auth_router,
        usuarios.router,
        productos.router,
        lotes.router,
        movimientos.router,
        envios.router,  # antes que notificaciones: /probar no es un {id_notificacion}
        notificaciones.router,
        backup.router,
        remoto.router,  # /api/v1/backup/{id}/copiar-remoto y /{id}/manifiesto
        jobs.router,
        metricas.router,
    ):
        app.include_router(router)
        for route in router.routes:
            path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or set()
            if "{" not in path:
                app.state.rutas_literales.setdefault(path, set()).update(methods)


def recover_backups(service: BackupService) -> None:
    # Un BACKUP_PATH inutilizable no debe impedir que la tienda venda: /health lo señala.
    try:
        service.recover()
    except Exception:
        log.exception(
            "No se pudo revisar el directorio de backups al arrancar; el servicio sigue sin backups"
        )


def wait_offsite_copies() -> None:
    """Una copia fuera del sitio a medio subir termina su intento; lo que no llegó queda PENDIENTE o
    ERROR y lo copia la siguiente corrida programada."""
    from inventario.modules.remoto.service import wait_background

    if not wait_background(timeout=0, give_up_retries=False):
        log.warning("Esperando a que termine la copia fuera del sitio en curso antes de cerrar")
        wait_background(timeout=600)


def create_app(
    settings: Settings | None = None,
    server: DatabaseServer | None = None,
    *,
    with_scheduler: bool = True,
    with_dispatcher: bool | None = None,
    on_ready: Callable[[Runtime], None] | None = None,
    principal: Principal | None = None,
) -> FastAPI:
    """`on_ready` se llama con el servicio listo (lo usa `serve` para el aviso de inicio).
    `with_dispatcher`: el hilo que envía los avisos (por defecto, donde corre el planificador).
    `principal`: esta aplicación es un worker de `serve --workers N`; el proceso principal ya
    arrancó la base, la migró, revisó los backups y lleva el planificador y los avisos."""
    if principal is not None:
        with_scheduler = with_dispatcher = False
    if with_dispatcher is None:
        with_dispatcher = with_scheduler
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            setup_logging(
                settings.logs_dir,
                settings.LOG_LEVEL,
                settings.ZONA_HORARIA,
                "worker" if principal is not None else "unico",
            )
            runtime = open_runtime(settings, server, migrate=principal is None)
        except Exception as exc:
            # `serve` lo muestra en la consola en una línea; la traza queda en error.log.
            app.state.fallo_arranque = describir_fallo(exc, settings)
            log.exception("No se pudo arrancar: %s", app.state.fallo_arranque)
            raise
        app.state.runtime = runtime
        app.state.settings = settings
        app.state.engine = runtime.engine
        app.state.session_factory = runtime.session_factory
        app.state.secret_key = settings.secret_key()
        backups = app.state.backup_service = BackupService(runtime, notifier=notify)
        if principal is None:
            announce_first_admin(runtime)
            recover_backups(backups)
        scheduler = None
        if with_scheduler:
            scheduler = Scheduler(runtime)
            scheduler.start()
            app.state.scheduler_info = scheduler.info
        elif principal is not None:
            app.state.planificador_principal_desde = principal.desde_planificador()
            app.state.scheduler_info = health_from_parent(
                runtime, principal.pid, principal.planificador, principal.desde_planificador()
            )
        else:
            app.state.scheduler_info = health_without_scheduler(runtime)
        app.state.scheduler = scheduler
        if settings.METRICAS_HABILITADAS:
            app.state.metricas.register(ColectorBase(runtime.engine, settings))
        despachador = Despachador(runtime) if with_dispatcher else None
        if despachador is not None:
            despachador.start()
        app.state.despachador = despachador
        if on_ready is not None:
            on_ready(runtime)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()  # espera a los jobs en curso antes de cerrar la base
            if despachador is not None:
                despachador.shutdown()  # lo que quede sin enviar sigue en la base
            if not backups.wait_background(timeout=0):
                log.warning("Esperando a que termine el backup lanzado desde la API antes de cerrar")
                backups.wait_background()
            wait_offsite_copies()
            stop_daemons()  # el rclone residente de este proceso (cada worker tiene el suyo)
            runtime.close()

    # Swagger UI y ReDoc desde el paquete instalado, no desde un CDN: /docs funciona sin internet.
    app = FastAPIOffline(
        title="Inventario",
        version=__version__,
        description="Inventario con backups que restauran exactamente, logs que se cuidan solos y alertas.",
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    # Un registro por aplicación (no el global de prometheus_client): cada app de prueba, el suyo.
    app.state.metricas = CollectorRegistry(auto_describe=False)
    if settings.METRICAS_HABILITADAS:
        app.add_middleware(MetricasHTTP, registry=app.state.metricas)
    # El último añadido es el primero en ver la petición: una URL o cabecera enorme no llega a
    # rutas, dependencias ni métricas.
    app.add_middleware(RequestLimits)
    install_handlers(app)
    include_routers(app)
    consola.instalar(app)
    completar(app)

    @app.get("/", include_in_schema=False)
    def inicio() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
