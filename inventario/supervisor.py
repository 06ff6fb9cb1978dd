"""`inventario serve --workers N`: un proceso principal y N workers que atienden HTTP.

El proceso principal es el único dueño de lo que debe existir una sola vez: arranca (y al final
detiene) el PostgreSQL embebido, aplica las migraciones, revisa los backups interrumpidos, crea el
primer ADMIN y lleva el planificador y el despachador de avisos. Los workers son procesos nuevos
(uvicorn, contexto `spawn`), cada uno con su socket de escucha en el mismo puerto
(`arranque.puertos_por_worker`), que solo atienden peticiones; cada uno construye la aplicación con
`worker_app`.

Por qué el planificador vive en el principal y no en cada worker: el registro de corridas y el
cerrojo consultivo ya harían que cada hora programada se ejecute una sola vez aunque N procesos la
disparen, pero N planificadores serían N recuperaciones al arrancar, N-1 reintentos por disparo y
un worker que uvicorn reemplaza (se colgó) no debe llevarse consigo un backup a medias. Un backup
pedido por la API lo hace el worker que atendió la petición; el cerrojo de backups (en la base) lo
ve cualquier otro worker: un segundo pedido recibe el mismo 409 que con un solo proceso.

Qué reciben los workers: la URL del PostgreSQL embebido (un socket unix, sin contraseña) por el
entorno, nunca por argv. Con DATABASE_URL cada worker la lee de la configuración, como el principal.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from inventario.config import Settings, get_settings
from inventario.logging_setup import rotate_due

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from inventario.runtime import Runtime

log = logging.getLogger(__name__)

ENV_PRINCIPAL = "INVENTARIO_PROCESO_PRINCIPAL"  # interna: la pone el principal para sus workers
READY_TIMEOUT = 180.0  # un worker que no atiende en este tiempo: el arranque falló
ROTATE_EVERY = 30.0


@dataclass(frozen=True)
class Principal:
    """Lo que un worker sabe del proceso principal (viaja en ENV_PRINCIPAL, en JSON)."""

    pid: int
    url: str | None  # el PostgreSQL embebido (socket unix, sin contraseña); None con DATABASE_URL
    bin_dir: str | None
    planificador: bool
    desde: str | None  # cuándo arrancó el planificador (ISO 8601)

    def desde_planificador(self) -> datetime | None:
        return datetime.fromisoformat(self.desde) if self.desde else None

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Principal:
        raw = os.environ.get(ENV_PRINCIPAL)
        if not raw:
            raise RuntimeError(
                f"{ENV_PRINCIPAL} no está definida: worker_app solo la usa `serve --workers N`"
            )
        return cls(**json.loads(raw))


def worker_app() -> FastAPI:
    """La aplicación de un worker: uvicorn la construye en cada proceso hijo."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from inventario.main import create_app
    from inventario.postgres import DatabaseServer, start_server

    principal = Principal.from_env()
    settings = get_settings()
    if principal.url is not None:
        bin_dir = Path(principal.bin_dir) if principal.bin_dir else None
        server = DatabaseServer(make_url(principal.url), embedded=True, bin_dir_hint=bin_dir)
    else:
        server = start_server(settings)  # DATABASE_URL: no arranca nada
    return create_app(settings, server, principal=principal)


class Supervisor(Multiprocess):
    """El `Multiprocess` de uvicorn (SIGTERM/SIGINT: para a todos y espera a que cada uno termine sus
    peticiones y su backup en curso), con tres cambios: cada worker escucha en su propio socket
    (`arranque.puertos_por_worker`) y su reemplazo recibe el mismo; el aviso de inicio sale cuando
    todos atienden; y rota los logs que escriben los workers."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], on_ready: Callable[[], None]
    ) -> None:
        super().__init__(config, sockets)
        self.processes_num = len(sockets)
        self.on_ready = on_ready
        self.started = False
        self.interrupted = False  # SIGTERM/SIGINT antes de que todos atendieran: no es un fallo
        self._next_rotation = time.monotonic() + ROTATE_EVERY

    def _spawn(self, index: int) -> Process:
        process = Process(self.config, [self.sockets[index]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._spawn(i) for i in range(self.processes_num)]
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(self.processes)
        while pending:
            self.handle_signals()  # un SIGTERM durante el arranque no espera a que terminen de arrancar
            if self.should_exit.is_set():
                self.interrupted = True
                return
            for process in list(pending):
                if not process.process.is_alive() or time.monotonic() > deadline:
                    log.error("El worker %s no arrancó; se detiene el servicio", process.pid)
                    self.should_exit.set()
                    return
                if process.is_ready(timeout=0.5):
                    pending.remove(process)
            time.sleep(0.1)
        self.started = True
        log.info("Workers en marcha: %s", [p.pid for p in self.processes])
        self.on_ready()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # muerto, o colgado sin responder en timeout_worker_healthcheck
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("El worker %s no pudo arrancar; se detiene el servicio", process.pid)
                self.should_exit.set()
                return
            log.warning("El worker %s terminó (código %s); se arranca otro", process.pid, process.exitcode)
            self.processes[index] = self._spawn(index)
        if time.monotonic() >= self._next_rotation:
            self._next_rotation = time.monotonic() + ROTATE_EVERY
            rotate_due()

    # Recargar (SIGHUP) o cambiar el número de workers en marcha (SIGTTIN/SIGTTOU) no se ofrece: cada
    # worker tiene su socket. Para cambiar WORKERS se reinicia el servicio.
    def handle_hup(self) -> None:
        log.warning("SIGHUP ignorada: para aplicar cambios, reinicie el servicio")

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignorada: para cambiar el número de workers, reinicie con otro WORKERS")

    def handle_ttou(self) -> None:
        self.handle_ttin()


def serve_workers(
    settings: Settings,
    config: uvicorn.Config,
    sockets: list[socket.socket],
    *,
    with_scheduler: bool,
    on_ready: Callable[[Runtime], None],
) -> bool:
    """Corre el servicio con un worker por socket de `sockets` hasta SIGTERM/SIGINT. False si un worker no
    pudo arrancar (el motivo quedó en error.log); True si se detuvo por una señal."""
    from inventario.arranque import describir_fallo
    from inventario.main import recover_backups, wait_offsite_copies
    from inventario.modules.backup.notifications import notify
    from inventario.modules.backup.service import BackupService
    from inventario.modules.envios.service import Despachador
    from inventario.modules.planificador.scheduler import Scheduler
    from inventario.modules.remoto.rclone import stop_daemons
    from inventario.runtime import announce_first_admin, open_runtime

    # Hasta que el supervisor ponga los suyos: SIGTERM/SIGINT durante el arranque de la base se
    # atienden después, con una parada ordenada (no matan al proceso con la base a medio arrancar).
    early: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: early.append(signum))
    try:
        runtime = open_runtime(settings)
    except Exception as exc:
        log.exception("No se pudo arrancar: %s", describir_fallo(exc, settings))
        raise
    scheduler: Scheduler | None = None
    despachador: Despachador | None = None
    try:
        settings.secret_key()  # generada aquí una vez: N workers la generarían a la vez
        announce_first_admin(runtime)
        recover_backups(BackupService(runtime, notifier=notify))
        if with_scheduler:
            scheduler = Scheduler(runtime)
            scheduler.start()
        despachador = Despachador(runtime)
        despachador.start()
        server = runtime.server
        principal = Principal(
            pid=os.getpid(),
            url=server.url.render_as_string(hide_password=False) if server.embedded else None,
            bin_dir=str(server.bin_dir_hint) if server.bin_dir_hint else None,
            planificador=with_scheduler,
            desde=scheduler.desde.isoformat() if scheduler is not None and scheduler.desde else None,
        )
        # Los workers (spawn) heredan el entorno; nada de esto va en argv.
        os.environ[ENV_PRINCIPAL] = principal.to_env()
        supervisor = Supervisor(config, sockets, lambda: on_ready(runtime))
        supervisor.signal_queue.extend(early)  # la señal que llegó mientras arrancaba la base
        supervisor.run()
        return supervisor.started or supervisor.interrupted
    finally:
        if scheduler is not None:
            scheduler.shutdown()  # espera a los jobs en curso (un backup programado) antes de cerrar la base
        if despachador is not None:
            despachador.shutdown()
        wait_offsite_copies()
        stop_daemons()
        runtime.close()  # detiene el PostgreSQL embebido: ya no queda ningún worker
        log.info("Servicio detenido (proceso principal %s)", os.getpid())
