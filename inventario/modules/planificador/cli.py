"""Consola de los jobs: `inventario scheduler`, `inventario jobs ...`, `inventario logs mantenimiento`
e `inventario alertas generar`.

Las corridas a mano pasan por el mismo registro y cerrojo que las programadas: quedan anotadas
(`manual`) y no se pisan con una corrida del planificador de otra instancia.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime

import typer

from inventario.cli_support import fail, runtime_context
from inventario.errors import DomainError, cantidad
from inventario.jobs import alertas_job, logs_maintenance_job
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.service import BackupService
from inventario.modules.planificador.model import EstadoEjecucion
from inventario.modules.planificador.scheduler import Scheduler
from inventario.modules.planificador.service import JobsService
from inventario.pagination import Pagina

jobs_app = typer.Typer(help="Jobs programados: listar, ejecutar y ver el historial.", no_args_is_help=True)
logs_app = typer.Typer(help="Archivos de log.", no_args_is_help=True)
alertas_app = typer.Typer(help="Alertas de vencimiento y stock.", no_args_is_help=True)


def _run(job_id: str, usuario: str) -> None:
    with runtime_context() as runtime:
        try:
            row = JobsService(runtime).run_now(job_id, ejecutado_por=usuario)
        except DomainError as exc:
            raise fail(exc.mensaje) from None
    duracion = (row.fin - row.inicio).total_seconds() if row.fin else 0.0
    text = f"Job {row.job_id} (corrida {row.id_ejecucion}): {row.estado} en {duracion:.2f} s\n{row.mensaje or ''}"
    if row.estado == EstadoEjecucion.ERROR:
        raise fail(text)
    typer.echo(text)


@jobs_app.command("listar")
def listar() -> None:
    """Cada job con su programación, próxima ejecución y última corrida."""
    with runtime_context() as runtime:
        service = JobsService(runtime)
        tz = runtime.settings.tz
        items = service.status(datetime.now(tz))
    for item in items:
        last = item["ultima_ejecucion"]
        typer.echo(f"{item['job_id']}  ({item['nombre']})  {item['programacion']}")
        typer.echo(f"    próxima: {item['proxima_ejecucion'].astimezone(tz):%Y-%m-%d %H:%M}")
        if last is None:
            typer.echo("    última: (nunca)")
        else:
            estado = "INTERRUMPIDA" if item["interrumpida"] else last.estado
            typer.echo(
                f"    última: {last.inicio.astimezone(tz):%Y-%m-%d %H:%M:%S} {estado}"
                f"{' (manual)' if last.manual else ''}: {last.mensaje or ''}"
            )
        if item["problema"]:
            typer.secho(f"    DEGRADADO: {item['problema']}", fg=typer.colors.YELLOW)


@jobs_app.command("ejecutar")
def ejecutar(
    job_id: str = typer.Argument(
        ..., help="backup_diario, backup_incremental, logs_maintenance o alertas_diarias"
    ),
    usuario: str = typer.Option("MANUAL", "--usuario", help="Quién lo ejecuta (queda en el registro)"),
) -> None:
    """Ejecuta un job ahora (queda en el registro como corrida manual)."""
    _run(job_id, usuario)


@jobs_app.command("historial")
def historial(
    job_id: str = typer.Argument(
        ..., help="backup_diario, backup_incremental, logs_maintenance o alertas_diarias"
    ),
    limite: int = typer.Option(20, "--limite", min=1, max=500, help="Cuántas corridas mostrar"),
) -> None:
    """Las últimas corridas de un job, la más reciente primero."""
    with runtime_context() as runtime:
        try:
            datos = JobsService(runtime).history(job_id, Pagina(offset=0, limit=limite))
        except DomainError as exc:
            raise fail(exc.mensaje) from None
        tz = runtime.settings.tz
    typer.echo(f"{cantidad(datos['total'], 'corrida')} de {job_id}.")
    for r in datos["items"]:
        typer.echo(
            f"{r.id_ejecucion:>6}  {r.programada_para.astimezone(tz):%Y-%m-%d %H:%M}  "
            f"{r.inicio.astimezone(tz):%Y-%m-%d %H:%M:%S}  {r.estado:<9} "
            f"{'manual ' if r.manual else ''}{r.ejecutado_por or ''} @ {r.instancia}: {r.mensaje or ''}"
        )


@logs_app.command("mantenimiento")
def logs_mantenimiento(
    usuario: str = typer.Option("MANUAL", "--usuario", help="Quién lo ejecuta (queda en el registro)"),
) -> None:
    """Comprime los logs rotados y borra los comprimidos viejos ahora (job logs_maintenance)."""
    _run(logs_maintenance_job.JOB_ID, usuario)


@alertas_app.command("generar")
def alertas_generar(
    usuario: str = typer.Option("MANUAL", "--usuario", help="Quién lo ejecuta (queda en el registro)"),
) -> None:
    """Genera ahora las alertas de vencimiento y stock (job alertas_diarias)."""
    _run(alertas_job.JOB_ID, usuario)


def scheduler() -> None:
    """Arranca solo el planificador (sin HTTP), para despliegues que lo separan del servicio."""
    stop = threading.Event()
    with runtime_context() as runtime:
        BackupService(runtime, notifier=notify).recover()
        planificador = Scheduler(runtime)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        planificador.start()
        try:
            typer.echo(
                f"Planificador en marcha (instancia {planificador.service.instancia}, "
                f"zona {runtime.settings.ZONA_HORARIA}). Ctrl+C para detener."
            )
            now = planificador.clock()
            for job in planificador.service.jobs:
                typer.echo(
                    f"  {job.job_id:<17} {planificador.service.programacion(job)}; próxima "
                    f"{planificador.service.next_slot(job, now).astimezone(runtime.settings.tz):%Y-%m-%d %H:%M}"
                )
            while not stop.wait(1.0):
                pass
            typer.echo("Deteniendo: se espera a que terminen los jobs en curso...")
        finally:
            planificador.shutdown(wait=True)
    typer.echo("Planificador detenido.")


__all__ = ["alertas_app", "jobs_app", "logs_app", "scheduler"]
