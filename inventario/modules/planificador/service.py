"""Ejecución de los jobs: una sola vez por hora programada en todo el despliegue. Sin HTTP.

Cómo se garantiza "una sola vez" aunque corran varios procesos o máquinas sobre la misma base:

1. Cada job tiene un cerrojo consultivo de PostgreSQL (`pg_try_advisory_lock`) en una conexión
   propia; quien no lo obtiene no espera: otra instancia está ejecutando ese job ahora.
2. Con el cerrojo, se inserta la fila de la corrida en `ejecuciones_job` (`job_id`, `ambito`,
   `programada_para`, única) con `INSERT ... ON CONFLICT DO NOTHING RETURNING`. Solo quien la
   inserta ejecuta; una instancia que dispara un momento después encuentra la fila y no hace nada.
3. La fila queda `EN_CURSO` hasta el final (`OK`, `ERROR` u `OMITIDO`, con mensaje). Una fila
   `EN_CURSO` cuyo cerrojo nadie tiene es una corrida cuyo proceso murió: quien toma el cerrojo
   después la marca `ERROR` ("interrumpida") y la consulta de estado la muestra así.

Las horas programadas salen de `schedule.py` (funciones puras de `now`); APScheduler solo dispara
`run_due(job_id, now)`. Al arrancar, `catch_up(now)` recupera una vez la última corrida perdida si
no pasó más de `SCHEDULER_GRACIA_MIN`.
"""

from __future__ import annotations

import logging
import os
import socket
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text

from inventario.config import Settings
from inventario.errors import Conflicto, DomainError, NoEncontrado
from inventario.jobs import alertas_job, backup_incremental_job, backup_job, logs_maintenance_job
from inventario.logging_setup import redact
from inventario.modules.notificaciones.service import create_notification
from inventario.modules.planificador import schedule
from inventario.modules.planificador.model import EjecucionJob, EstadoEjecucion
from inventario.modules.planificador.resultado import ContextoJob, JobFallido, ResultadoJob
from inventario.pagination import Pagina, page
from inventario.runtime import Runtime

log = logging.getLogger(__name__)

LOCK_CLASS = 72620  # primera mitad de la clave del cerrojo; la segunda identifica job y ámbito
MENSAJE_MAX = 4000
OK, DEGRADADO = "OK", "DEGRADADO"


@dataclass(frozen=True)
class JobDef:
    job_id: str
    nombre: str
    funcion: Callable[[ContextoJob], ResultadoJob]
    hora_de: Callable[[Settings], tuple[int, int]]
    descripcion_de: Callable[[Settings], str]
    # Jobs que cuidan algo de cada máquina (sus logs): una corrida por máquina y carpeta.
    por_maquina: bool = False
    tipo_notificacion: str = "MANTENIMIENTO"
    semaforo_fallo: str = "ROJO"  # un job que falla sale por los canales de avisos al momento
    titulo_fallo: str | None = None  # por defecto "❌ Error en el job ID (nombre)"
    # Jobs cada N minutos (`backup_incremental`) en vez de una vez al día; 0 = apagado (el job no
    # se registra). Sus horas programadas salen de `schedule.interval_*`; `hora_de` no se usa.
    cada_minutos: Callable[[Settings], int] | None = None

    def minutos(self, settings: Settings) -> int | None:
        return self.cada_minutos(settings) if self.cada_minutos is not None else None

    def activo(self, settings: Settings) -> bool:
        return self.minutos(settings) != 0


JOBS: tuple[JobDef, ...] = (
    JobDef(
        job_id=backup_job.JOB_ID,
        nombre="Backup BD",
        funcion=backup_job.run,
        hora_de=lambda s: (s.BACKUP_HOUR, s.BACKUP_MINUTE),
        descripcion_de=lambda s: (
            f"Backup COMPLETO los {schedule.DIAS[s.BACKUP_FULL_DAY]} (BACKUP_FULL_DAY), DIFERENCIAL los "
            f"demás días; luego elimina los backups de más de {s.BACKUP_RETENTION_DAYS} días"
            + ("" if s.BACKUP_ENABLED else ". Deshabilitado (BACKUP_ENABLED=false)")
        ),
        tipo_notificacion="BACKUP",
        semaforo_fallo="ROJO",
        titulo_fallo=f"❌ Error en el backup diario ({backup_job.JOB_ID})",
    ),
    JobDef(
        job_id=backup_incremental_job.JOB_ID,
        nombre="Backup incremental",
        funcion=backup_incremental_job.run,
        hora_de=lambda s: (0, 0),
        cada_minutos=lambda s: s.BACKUP_INCREMENTAL_MINUTOS,
        descripcion_de=lambda s: (
            f"Backup INCREMENTAL cada {s.BACKUP_INCREMENTAL_MINUTOS} minutos (BACKUP_INCREMENTAL_MINUTOS): "
            "los cambios desde el backup anterior de la cadena; sin archivo si nada cambió; se omite si "
            "otro backup está en curso"
            + ("" if s.BACKUP_ENABLED else ". Deshabilitado (BACKUP_ENABLED=false)")
        ),
        tipo_notificacion="BACKUP",
        semaforo_fallo="ROJO",
        titulo_fallo=f"❌ Error en el backup incremental ({backup_incremental_job.JOB_ID})",
    ),
    JobDef(
        job_id=logs_maintenance_job.JOB_ID,
        nombre="Mantenimiento logs",
        funcion=logs_maintenance_job.run,
        hora_de=lambda s: (s.LOGS_HOUR, s.LOGS_MINUTE),
        descripcion_de=lambda s: (
            f"Comprime los logs rotados de más de {s.LOGS_COMPRESSION_DAYS} días (error 10, health 14, "
            f"sesiones 30) y elimina los comprimidos de más de {s.LOGS_RETENTION_DAYS} días"
            + (
                ""
                if s.LOGS_COMPRESSION_ENABLED
                else ". Compresión deshabilitada (LOGS_COMPRESSION_ENABLED=false)"
            )
        ),
        por_maquina=True,
    ),
    JobDef(
        job_id=alertas_job.JOB_ID,
        nombre="Alertas diarias",
        funcion=alertas_job.run,
        hora_de=lambda s: (s.ALERTAS_HOUR, s.ALERTAS_MINUTE),
        descripcion_de=lambda s: (
            f"Genera alertas de lotes vencidos o que vencen en {s.ALERTAS_DIAS_VENCIMIENTO} días y de "
            "productos sin stock o bajo el mínimo"
        ),
    ),
)


class JobEnCurso(Conflicto):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"El job {job_id} ya se está ejecutando; reintente cuando termine")


@dataclass(frozen=True)
class JobRun:
    """Lo que hizo `run_due`/`run_now` con una hora programada."""

    job_id: str
    programada_para: datetime | None
    # EJECUTADA, YA_EJECUTADA (otra instancia o antes), EN_OTRA_INSTANCIA (cerrojo ocupado),
    # FUERA_DE_GRACIA (la última hora programada pasó hace más que la gracia)
    resultado: str
    id_ejecucion: int | None = None
    estado: str | None = None
    mensaje: str | None = None


def instancia_actual() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _texto(exc: BaseException) -> str:
    if isinstance(exc, (DomainError, JobFallido)):
        return exc.mensaje
    return f"{exc.__class__.__name__}: {exc}"


def _limpio(mensaje: str) -> str:
    mensaje = redact(mensaje.replace("\x00", ""))
    return mensaje if len(mensaje) <= MENSAJE_MAX else mensaje[: MENSAJE_MAX - 1] + "…"


class JobsService:
    def __init__(
        self,
        runtime: Runtime,
        *,
        jobs: tuple[JobDef, ...] | list[JobDef] | None = None,
        instancia: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        # Un job cada 0 minutos está apagado: ni se programa ni se lista.
        self.jobs = tuple(j for j in (jobs if jobs is not None else JOBS) if j.activo(self.settings))
        self.instancia = instancia or instancia_actual()

    # ------------------------------------------------------------------ definiciones
    @property
    def grace(self) -> timedelta:
        return timedelta(minutes=self.settings.SCHEDULER_GRACIA_MIN)

    def job(self, job_id: str) -> JobDef:
        for job in self.jobs:
            if job.job_id == job_id:
                return job
        raise NoEncontrado(
            f"No existe el job '{job_id}'; los jobs son: " + ", ".join(j.job_id for j in self.jobs)
        )

    def ambito(self, job: JobDef) -> str:
        if not job.por_maquina:
            return ""
        return f"{socket.gethostname()}:{self.settings.logs_dir}"[:500]

    def lock_key(self, job: JobDef) -> tuple[int, int]:
        return LOCK_CLASS, zlib.crc32(f"{job.job_id}|{self.ambito(job)}".encode()) & 0x7FFFFFFF

    def latest_slot(self, job: JobDef, now: datetime) -> datetime:
        if minutes := job.minutos(self.settings):
            return schedule.interval_latest_slot(now, minutes)
        hour, minute = job.hora_de(self.settings)
        return schedule.latest_slot(now, hour, minute, self.settings.tz)

    def next_slot(self, job: JobDef, now: datetime) -> datetime:
        if minutes := job.minutos(self.settings):
            # La misma hora en la zona configurada, como los jobs diarios (la API la muestra así).
            return schedule.interval_next_slot(now, minutes).astimezone(self.settings.tz)
        hour, minute = job.hora_de(self.settings)
        return schedule.next_slot(now, hour, minute, self.settings.tz)

    def due_slot(self, job: JobDef, now: datetime) -> datetime | None:
        if minutes := job.minutos(self.settings):
            # Solo la última cuenta y nunca está fuera de gracia: la siguiente la reemplaza.
            return schedule.interval_latest_slot(now, minutes)
        hour, minute = job.hora_de(self.settings)
        return schedule.due_slot(now, hour, minute, self.settings.tz, self.grace)

    def programacion(self, job: JobDef) -> str:
        if minutes := job.minutos(self.settings):
            return schedule.describe_interval(minutes)
        hour, minute = job.hora_de(self.settings)
        return schedule.describe(hour, minute, self.settings.ZONA_HORARIA)

    def cron(self, job: JobDef) -> tuple[str, str]:
        """(cron, hora) para mostrar: `0 3 * * *` y `03:00`, o `*/15 * * * *` y `cada 15 min`."""
        if minutes := job.minutos(self.settings):
            return schedule.cron_interval(minutes), f"cada {minutes} min"
        hour, minute = job.hora_de(self.settings)
        return schedule.cron(hour, minute), f"{hour:02d}:{minute:02d}"

    # ------------------------------------------------------------------ cerrojo
    @contextmanager
    def _lock(self, job: JobDef) -> Iterator[bool]:
        """True si esta instancia tiene el cerrojo del job; el servidor lo suelta solo si el
        proceso muere (la conexión se cierra)."""
        conn = self.runtime.server.connect(connect_timeout=10)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self.lock_key(job)).fetchone()
            yield bool(row and row[0])
        finally:
            conn.close()

    def lock_held(self, job: JobDef) -> bool:
        """¿Alguna sesión (de cualquier instancia) tiene ahora el cerrojo del job?"""
        classid, objid = self.lock_key(job)
        with self.runtime.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND classid = :c AND objid = :o AND objsubid = 2)"
                    ),
                    {"c": classid, "o": objid},
                ).scalar()
            )

    # ------------------------------------------------------------------ corridas
    def _recover_locked(self, job: JobDef) -> list[int]:
        """Con el cerrojo tomado, toda fila EN_CURSO de este job es de un proceso que murió."""
        with self.runtime.engine.begin() as conn:
            rows = conn.execute(
                text(
                    "UPDATE ejecuciones_job SET estado = 'ERROR', fin = clock_timestamp(), "
                    "mensaje = 'Interrumpida: la instancia ' || instancia || ' dejó de ejecutarla sin "
                    "registrar el final (el proceso terminó, o la base se restauró desde un backup)' "
                    "WHERE job_id = :job AND ambito = :ambito AND estado = 'EN_CURSO' "
                    "RETURNING id_ejecucion, mensaje"
                ),
                {"job": job.job_id, "ambito": self.ambito(job)},
            ).all()
        for row in rows:
            log.error("Job %s: corrida %s %s", job.job_id, row.id_ejecucion, row.mensaje)
            self._notify_failure(job, row.id_ejecucion, row.mensaje)
        return [r.id_ejecucion for r in rows]

    def recover(self) -> list[int]:
        """Marca como interrumpidas las corridas de procesos muertos (al arrancar el planificador)."""
        recovered: list[int] = []
        for job in self.jobs:
            with self._lock(job) as acquired:
                if acquired:
                    recovered += self._recover_locked(job)
        return recovered

    def _claim(self, job: JobDef, slot: datetime, manual: bool, ejecutado_por: str) -> int | None:
        with self.runtime.engine.begin() as conn:
            return conn.execute(
                text(
                    "INSERT INTO ejecuciones_job "
                    "(job_id, ambito, programada_para, inicio, estado, instancia, manual, ejecutado_por) "
                    "VALUES (:job, :ambito, :slot, clock_timestamp(), 'EN_CURSO', :instancia, :manual, :por) "
                    "ON CONFLICT (job_id, ambito, programada_para) DO NOTHING RETURNING id_ejecucion"
                ),
                {
                    "job": job.job_id,
                    "ambito": self.ambito(job),
                    "slot": slot,
                    "instancia": self.instancia[:200],
                    "manual": manual,
                    "por": ejecutado_por[:100],
                },
            ).scalar()

    def _finish(self, id_ejecucion: int, estado: str, mensaje: str) -> None:
        try:
            with self.runtime.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE ejecuciones_job SET estado = :estado, mensaje = :mensaje, fin = clock_timestamp() "
                        "WHERE id_ejecucion = :id"
                    ),
                    {"estado": estado, "mensaje": mensaje, "id": id_ejecucion},
                )
        except Exception:
            log.exception("No se pudo registrar el final de la corrida %s", id_ejecucion)

    def _notify_failure(self, job: JobDef, id_ejecucion: int, mensaje: str) -> None:
        titulo = job.titulo_fallo or f"❌ Error en el job {job.job_id} ({job.nombre})"
        try:
            with self.runtime.session_factory() as session:
                create_notification(
                    session,
                    tipo=job.tipo_notificacion,
                    titulo=titulo,
                    mensaje=f"Corrida {id_ejecucion} en {self.instancia}: {mensaje}",
                    semaforo=job.semaforo_fallo,
                    referencia_tipo="EJECUCION_JOB",
                    referencia_id=id_ejecucion,
                )
        except Exception:
            log.exception("No se pudo notificar el fallo de la corrida %s", id_ejecucion)

    def _execute(self, job: JobDef, slot: datetime, *, manual: bool, ejecutado_por: str) -> JobRun:
        """Con el cerrojo tomado: reclama la corrida y, si es suya, la ejecuta y registra."""
        id_ejecucion = self._claim(job, slot, manual, ejecutado_por)
        if id_ejecucion is None:
            return JobRun(job.job_id, slot, "YA_EJECUTADA")
        log.info(
            "Job %s: corrida %s iniciada (programada para %s, %s, instancia %s)",
            job.job_id,
            id_ejecucion,
            slot.astimezone(self.settings.tz).isoformat(),
            "manual" if manual else ejecutado_por,
            self.instancia,
        )
        notify = False
        try:
            result = job.funcion(ContextoJob(self.runtime, slot, manual, ejecutado_por))
            estado, mensaje = result.estado, result.mensaje
        except JobFallido as exc:
            estado, mensaje, notify = EstadoEjecucion.ERROR, exc.mensaje, not exc.notificado
        except Exception as exc:
            log.exception("Job %s: corrida %s falló", job.job_id, id_ejecucion)
            estado, mensaje, notify = EstadoEjecucion.ERROR, _texto(exc), True
        mensaje = _limpio(mensaje)
        self._finish(id_ejecucion, estado, mensaje)
        level = logging.ERROR if estado == EstadoEjecucion.ERROR else logging.INFO
        log.log(level, "Job %s: corrida %s terminó %s: %s", job.job_id, id_ejecucion, estado, mensaje)
        if notify:
            self._notify_failure(job, id_ejecucion, mensaje)
        return JobRun(job.job_id, slot, "EJECUTADA", id_ejecucion, estado, mensaje)

    def _already_claimed(self, job: JobDef, slot: datetime) -> bool:
        with self.runtime.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM ejecuciones_job WHERE job_id = :job "
                        "AND ambito = :ambito AND programada_para = :slot)"
                    ),
                    {"job": job.job_id, "ambito": self.ambito(job), "slot": slot},
                ).scalar()
            )

    def run_due(self, job_id: str, now: datetime, *, origen: str = "SCHEDULER") -> JobRun:
        """Ejecuta la hora programada que corresponde a `now`, si nadie lo hizo ya. Lo llama
        APScheduler a la hora (y `catch_up` al arrancar); llamarlo de más no hace daño."""
        job = self.job(job_id)
        slot = self.due_slot(job, now)
        if slot is None:
            return JobRun(job_id, self.latest_slot(job, now), "FUERA_DE_GRACIA")
        if self._already_claimed(job, slot):  # lo habitual en la segunda instancia: ni pide el cerrojo
            return JobRun(job_id, slot, "YA_EJECUTADA")
        with self._lock(job) as acquired:
            if not acquired:
                log.info("Job %s: otra instancia lo está ejecutando; esta no hace nada", job_id)
                return JobRun(job_id, slot, "EN_OTRA_INSTANCIA")
            self._recover_locked(job)
            return self._execute(job, slot, manual=False, ejecutado_por=origen)

    def catch_up(self, now: datetime) -> list[JobRun]:
        """Al arrancar: la última corrida de cada job que no se hizo, si está dentro de la gracia."""
        corridas = []
        for job in self.jobs:
            try:
                corrida = self.run_due(job.job_id, now, origen="RECUPERACION")
            except Exception:
                log.exception("Job %s: no se pudo recuperar la corrida perdida", job.job_id)
                continue
            if corrida.resultado == "EJECUTADA":
                log.warning(
                    "Job %s: se recuperó la corrida programada para %s (el servicio no estaba en marcha)",
                    job.job_id,
                    corrida.programada_para.astimezone(self.settings.tz).isoformat(),  # type: ignore[union-attr]  # una corrida recuperada siempre tiene hora
                )
            corridas.append(corrida)
        return corridas

    def run_now(self, job_id: str, ejecutado_por: str = "MANUAL") -> EjecucionJob:
        """Corrida manual (API o consola): queda en el registro con `manual` y la hora pedida.
        409 (`JobEnCurso`) si el job se está ejecutando en cualquier instancia."""
        job = self.job(job_id)
        with self._lock(job) as acquired:
            if not acquired:
                raise JobEnCurso(job_id)
            self._recover_locked(job)
            corrida = self._execute(
                job, datetime.now(self.settings.tz), manual=True, ejecutado_por=ejecutado_por
            )
        assert corrida.id_ejecucion is not None
        return self.get(corrida.id_ejecucion)

    # ------------------------------------------------------------------ consultas
    def get(self, id_ejecucion: int) -> EjecucionJob:
        with self.runtime.session_factory() as session:
            row = session.get(EjecucionJob, id_ejecucion)
        if row is None:
            raise NoEncontrado(f"No existe la ejecución {id_ejecucion}")
        return row

    def history(self, job_id: str, pagina: Pagina) -> dict[str, Any]:
        """Las corridas de un job, la más reciente primero (el cuerpo de `Listado`)."""
        job = self.job(job_id)
        stmt = (
            select(EjecucionJob)
            .where(EjecucionJob.job_id == job.job_id, EjecucionJob.ambito == self.ambito(job))
            .order_by(EjecucionJob.inicio.desc(), EjecucionJob.id_ejecucion.desc())
        )
        with self.runtime.session_factory() as session:
            return page(session, stmt, pagina)

    def _last_and_coverage(
        self, job: JobDef, slot: datetime
    ) -> tuple[EjecucionJob | None, bool, datetime | None]:
        """(última corrida, ¿hay una corrida para `slot` o posterior?, primera hora programada registrada)."""
        where = (EjecucionJob.job_id == job.job_id, EjecucionJob.ambito == self.ambito(job))
        with self.runtime.session_factory() as session:
            last = session.scalars(
                select(EjecucionJob)
                .where(*where)
                .order_by(EjecucionJob.inicio.desc(), EjecucionJob.id_ejecucion.desc())
                .limit(1)
            ).first()
            covered = session.scalar(
                select(func.count() > 0).where(*where, EjecucionJob.programada_para >= slot)
            )
            # Desde cuándo se esperan corridas: la primera corrida registrada de este job o, para
            # los jobs de todo el despliegue, de cualquiera de ellos (había un planificador).
            scope = and_(*where) if job.por_maquina else or_(and_(*where), EjecucionJob.ambito == "")
            first = session.scalar(select(func.min(EjecucionJob.programada_para)).where(scope))
        return last, bool(covered), first

    def status(self, now: datetime, *, desde: datetime | None = None) -> list[dict[str, Any]]:
        """Estado de cada job. `desde`: cuándo arrancó el planificador de este proceso.

        Un job está DEGRADADO si su última corrida falló o quedó interrumpida, o si no corrió
        cuando debía: la última hora programada pasó hace más que la gracia, no hay corrida para
        ella (ni manual posterior) y el job ya debía correr entonces (había un planificador en
        marcha en este proceso, o el registro tiene corridas anteriores de este job o, si es de
        todo el despliegue, de cualquier otro). Una instalación nueva no aparece degradada por lo
        que no pudo hacer antes de existir.
        """
        items = []
        for job in self.jobs:
            slot = self.latest_slot(job, now)
            last, covered, first = self._last_and_coverage(job, slot)
            running = False
            interrupted = False
            if last is not None and last.estado == EstadoEjecucion.EN_CURSO:
                if self.lock_held(job):
                    running = True
                else:
                    # Sin cerrojo: o terminó recién (releer) o el proceso murió.
                    with self.runtime.session_factory() as session:
                        last = session.get(EjecucionJob, last.id_ejecucion) or last
                    interrupted = last.estado == EstadoEjecucion.EN_CURSO
            problema = None
            if interrupted:
                problema = f"la corrida {last.id_ejecucion} quedó interrumpida (instancia {last.instancia})"  # type: ignore[union-attr]  # interrupted implica last
            elif last is not None and last.estado == EstadoEjecucion.ERROR:
                problema = f"la última corrida falló: {last.mensaje}"
            else:
                baselines = [b for b in (desde, first) if b is not None]
                expected = bool(baselines) and slot >= min(baselines)
                if expected and not covered and not running and now - slot > self.grace:
                    hora = slot.astimezone(self.settings.tz).strftime("%Y-%m-%d %H:%M")
                    problema = (
                        f"no se ejecutó a las {hora} y ya pasó el período de gracia "
                        f"({self.settings.SCHEDULER_GRACIA_MIN} min)"
                    )
            cron, hora = self.cron(job)
            items.append(
                {
                    "job": job,
                    "job_id": job.job_id,
                    "nombre": job.nombre,
                    "descripcion": job.descripcion_de(self.settings),
                    "programacion": self.programacion(job),
                    "cron": cron,
                    "hora": hora,
                    "zona_horaria": self.settings.ZONA_HORARIA,
                    "ambito": self.ambito(job),
                    "proxima_ejecucion": self.next_slot(job, now),
                    "ultima_programada": slot,
                    "en_curso": running,
                    "ultima_ejecucion": last,
                    "interrumpida": interrupted,
                    "estado": DEGRADADO if problema else OK,
                    "problema": problema,
                }
            )
        return items

    def health(
        self, now: datetime, *, activo: bool, esperado: bool, desde: datetime | None = None
    ) -> dict[str, Any]:
        """La sección `scheduler` de `/health`. `esperado`: este proceso debería tener planificador."""
        items = self.status(now, desde=desde)
        problems = [f"{i['job_id']}: {i['problema']}" for i in items if i["problema"]]
        if esperado and not activo:
            problems.insert(0, "el planificador de este proceso no está en marcha")
        section: dict[str, Any] = {
            "estado": DEGRADADO if problems else OK,
            "activo": activo,
            "instancia": self.instancia,
            "zona_horaria": self.settings.ZONA_HORARIA,
            "gracia_minutos": self.settings.SCHEDULER_GRACIA_MIN,
            "desde": desde.isoformat() if desde else None,
            "jobs": [
                {
                    "job_id": i["job_id"],
                    "programacion": i["programacion"],
                    "proxima_ejecucion": i["proxima_ejecucion"].isoformat(),
                    "estado": i["estado"],
                    "en_curso": i["en_curso"],
                    "ultima_ejecucion": _last_summary(i["ultima_ejecucion"], i["interrumpida"]),
                    **({"problema": i["problema"]} if i["problema"] else {}),
                }
                for i in items
            ],
        }
        if problems:
            section["mensaje"] = "; ".join(problems)
        elif not esperado:
            section["mensaje"] = (
                "El planificador no corre en este proceso (serve --sin-scheduler): los jobs los "
                "ejecuta otra instancia (inventario scheduler)"
            )
        return section


def _last_summary(row: EjecucionJob | None, interrupted: bool) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id_ejecucion": row.id_ejecucion,
        "programada_para": row.programada_para.isoformat(),
        "inicio": row.inicio.isoformat() if row.inicio else None,
        "fin": row.fin.isoformat() if row.fin else None,
        "estado": "INTERRUMPIDA" if interrupted else row.estado,
        "manual": row.manual,
        "mensaje": row.mensaje,
    }


__all__ = ["JOBS", "JobDef", "JobEnCurso", "JobRun", "JobsService", "instancia_actual"]
