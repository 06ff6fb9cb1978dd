"""Job `backup_incremental`: cada BACKUP_INCREMENTAL_MINUTOS, los cambios desde el backup anterior.

- Nada cambió desde el backup anterior de la cadena: OMITIDO, sin archivo ni fila en
  `historial_backup` (ver `dump.changes_since`); el siguiente que se haga leerá desde el mismo corte.
- Otro backup en curso (el diario, uno manual, una limpieza): OMITIDO y lo dice; no espera ni
  falla, los cambios viajan en el siguiente.
- La hora programada del backup diario (BACKUP_HOUR:BACKUP_MINUTE): OMITIDO, ese backup la cubre.
- Un fallo: ERROR, con la notificación ROJA del motor. Un éxito no notifica (ver notifications).
"""

from __future__ import annotations

from inventario.modules.backup.exceptions import BackupEnCurso, BackupError, SinCambios
from inventario.modules.backup.model import TipoBackup
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.service import BackupService
from inventario.modules.planificador.model import EstadoEjecucion
from inventario.modules.planificador.resultado import ContextoJob, JobFallido, ResultadoJob

JOB_ID = "backup_incremental"


def run(ctx: ContextoJob) -> ResultadoJob:
    settings = ctx.runtime.settings
    if not settings.BACKUP_ENABLED and not ctx.manual:
        return ResultadoJob(
            EstadoEjecucion.OMITIDO,
            "Backups deshabilitados (BACKUP_ENABLED=false): no se hizo el incremental",
        )
    local = ctx.programada_para.astimezone(settings.tz)
    if not ctx.manual and (local.hour, local.minute) == (settings.BACKUP_HOUR, settings.BACKUP_MINUTE):
        return ResultadoJob(
            EstadoEjecucion.OMITIDO,
            f"A las {local:%H:%M} corre el backup diario (backup_diario): cubre este incremental",
        )
    service = BackupService(ctx.runtime, notifier=notify)
    ejecutado_por = ctx.ejecutado_por if ctx.manual else "SCHEDULER"
    try:
        row = service.run(TipoBackup.INCREMENTAL, ejecutado_por, skip_unchanged=True)
    except SinCambios as exc:
        return ResultadoJob(EstadoEjecucion.OMITIDO, str(exc))
    except BackupEnCurso:
        running = service.running_type()
        que = f"un backup {running}" if running else "otro backup o una limpieza"
        return ResultadoJob(
            EstadoEjecucion.OMITIDO,
            f"Incremental omitido: {que} está en curso; el siguiente incremental incluirá estos cambios",
        )
    except BackupError as exc:
        # Con fila ERROR, el motor ya creó la notificación ROJA; sin ella, avisa el planificador.
        raise JobFallido(exc.mensaje, notificado=exc.id_backup is not None) from exc
    mensaje = row.resumen()
    return ResultadoJob(EstadoEjecucion.OK, mensaje)
