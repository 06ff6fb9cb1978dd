"""El planificador en proceso: APScheduler 3 (`BackgroundScheduler`, `CronTrigger` en ZONA_HORARIA).

APScheduler solo marca la hora: cada disparo llama a `JobsService.run_due(job_id, now)`, que decide
con funciones puras qué hora programada toca y garantiza, con el registro de corridas y un cerrojo
de PostgreSQL, que se ejecute una sola vez aunque haya varias instancias. Al arrancar, en el hilo
del planificador (sin demorar el arranque del servicio), marca las corridas interrumpidas y
recupera una vez la última corrida perdida de cada job si está dentro de la gracia.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from inventario.modules.planificador.service import JobDef, JobRun, JobsService
from inventario.runtime import Runtime

log = logging.getLogger(__name__)

STARTUP_JOB_ID = "_arranque"
RETRY = timedelta(seconds=60)
RETRY_SUFFIX = ":reintento"


class _SlotTrigger(BaseTrigger):
    """Dispara en las horas programadas de `JobsService.next_slot` (jobs cada N minutos)."""

    def __init__(self, service: JobsService, job: JobDef) -> None:
        self.service = service
        self.job = job

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        reference = previous_fire_time if previous_fire_time is not None else now - timedelta(microseconds=1)
        return self.service.next_slot(self.job, max(reference, now - timedelta(microseconds=1)))


class Scheduler:
    def __init__(
        self,
        runtime: Runtime,
        *,
        jobs: tuple[JobDef, ...] | list[JobDef] | None = None,
        instancia: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.service = JobsService(runtime, jobs=jobs, instancia=instancia)
        self.clock = clock or (lambda: datetime.now(self.settings.tz))
        self.desde: datetime | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._startup_done = threading.Event()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self, *, catch_up: bool = True) -> None:
        tz = self.settings.tz
        scheduler = BackgroundScheduler(
            timezone=tz,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self.settings.SCHEDULER_GRACIA_MIN * 60,
            },
        )
        for job in self.service.jobs:
            hour, minute = job.hora_de(self.settings)
            trigger = (
                _SlotTrigger(self.service, job)
                if job.minutos(self.settings)
                else CronTrigger(hour=hour, minute=minute, timezone=tz)
            )
            scheduler.add_job(
                self._fire,
                trigger,
                id=job.job_id,
                name=job.nombre,
                args=[job.job_id],
            )
        if catch_up:
            # Sin trigger: corre una vez, ya, en el ejecutor del planificador.
            scheduler.add_job(self._startup, id=STARTUP_JOB_ID, name="Recuperación al arrancar")
        else:
            self._startup_done.set()
        scheduler.start()
        self._scheduler = scheduler
        self.desde = self.clock()
        now = self.desde
        for job in self.service.jobs:
            log.info(
                "Planificador: job %s registrado (%s); próxima ejecución %s",
                job.job_id,
                self.service.programacion(job),
                self.service.next_slot(job, now).isoformat(),
            )
        log.info("Planificador en marcha en la instancia %s", self.service.instancia)

    def _startup(self) -> None:
        try:
            self.service.recover()
            for corrida in self.service.catch_up(self.clock()):
                self._retry_if_busy(corrida)
        except Exception:
            log.exception("Planificador: falló la recuperación al arrancar")
        finally:
            self._startup_done.set()

    def wait_startup(self, timeout: float | None = None) -> bool:
        """Espera a que termine la recuperación del arranque (pruebas, orden `scheduler`)."""
        return self._startup_done.wait(timeout)

    def _fire(self, job_id: str) -> None:
        try:
            corrida = self.service.run_due(job_id, self.clock())
        except Exception:
            log.exception("Planificador: el disparo de %s falló", job_id)
            return
        self._retry_if_busy(corrida)

    def _retry_if_busy(self, corrida: JobRun) -> None:
        """Cerrojo ocupado (otra instancia ejecuta esta misma hora, o alguien lo pidió a mano justo
        antes): se vuelve a mirar en un rato. Si era la misma hora, el reintento la encuentra hecha;
        si no, la ejecuta, mientras siga dentro de la gracia."""
        if corrida.resultado != "EN_OTRA_INSTANCIA" or self._scheduler is None or not self.running:
            return
        self._scheduler.add_job(
            self._fire,
            "date",
            run_date=datetime.now(self.settings.tz) + RETRY,
            args=[corrida.job_id],
            id=f"{corrida.job_id}{RETRY_SUFFIX}",
            name=f"Reintento de {corrida.job_id}",
            replace_existing=True,
        )
        log.info(
            "Planificador: %s está en curso en otra parte; se reintenta en %s s",
            corrida.job_id,
            int(RETRY.total_seconds()),
        )

    def shutdown(self, wait: bool = True) -> None:
        """Detiene los disparos; con `wait`, espera a que terminen los jobs en curso (un backup no
        queda a medias por apagar el servicio)."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
            log.info("Planificador detenido")

    def info(self) -> dict[str, Any]:
        """Sección `scheduler` de `/health`."""
        return self.service.health(self.clock(), activo=self.running, esperado=True, desde=self.desde)


def health_without_scheduler(runtime: Runtime) -> Callable[[], dict[str, Any]]:
    """Para `serve --sin-scheduler`: el registro de corridas (de otras instancias) sigue a la vista."""
    service = JobsService(runtime)

    def info() -> dict[str, Any]:
        return service.health(datetime.now(runtime.settings.tz), activo=False, esperado=False)

    return info


def health_from_parent(
    runtime: Runtime, parent_pid: int, activo: bool, desde: datetime | None
) -> Callable[[], dict[str, Any]]:
    """Para los workers de `serve --workers N`: el planificador corre en el proceso principal
    (`parent_pid`); está en marcha mientras ese proceso siga siendo el padre de este."""
    import os
    import socket

    service = JobsService(runtime, instancia=f"{socket.gethostname()}:{parent_pid}")

    def info() -> dict[str, Any]:
        vivo = activo and os.getppid() == parent_pid
        return service.health(datetime.now(runtime.settings.tz), activo=vivo, esperado=activo, desde=desde)

    return info


__all__ = ["Scheduler", "health_from_parent", "health_without_scheduler"]
