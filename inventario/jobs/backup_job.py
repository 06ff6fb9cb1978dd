"""Job `backup_diario`: COMPLETO el día BACKUP_FULL_DAY, DIFERENCIAL los demás, y luego la retención."""

from __future__ import annotations

from inventario.archivos import human_size
from inventario.modules.backup.exceptions import BackupEnCurso, BackupError
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.service import BackupService, backup_tipo
from inventario.modules.planificador.resultado import ContextoJob, JobFallido, ResultadoJob

JOB_ID = "backup_diario"


def run(ctx: ContextoJob) -> ResultadoJob:
    settings = ctx.runtime.settings
    # BACKUP_ENABLED apaga los backups programados; pedir el job a mano es una orden explícita.
    if not settings.BACKUP_ENABLED and not ctx.manual:
        return ResultadoJob("OMITIDO", "Backups deshabilitados (BACKUP_ENABLED=false): no se hizo el backup")
    tipo = backup_tipo(ctx.programada_para, settings.BACKUP_FULL_DAY, settings.tz)
    service = BackupService(ctx.runtime, notifier=notify)
    # `ejecutado_por` del plan: SCHEDULER (también la recuperación al arrancar), MANUAL o el usuario.
    ejecutado_por = ctx.ejecutado_por if ctx.manual else "SCHEDULER"
    try:
        row = service.run(tipo, ejecutado_por)
    except BackupEnCurso as exc:
        raise JobFallido(f"No se hizo el backup {tipo}: {exc.mensaje}") from exc
    except BackupError as exc:
        # Con fila ERROR, el motor ya creó la notificación ROJA; sin ella (no pudo ni empezar), avisa el job.
        raise JobFallido(exc.mensaje, notificado=exc.id_backup is not None) from exc
    mensaje = (
        f"Backup {row.tipo} {row.id_backup} completado: {row.nombre_archivo} "
        f"({row.tamanio_legible}, {row.duracion_segundos or 0:.1f} s)"
    )
    if row.nota:
        mensaje += f". Nota: {row.nota}"
    try:
        limpieza = service.cleanup()
    except Exception as exc:
        detalle = getattr(exc, "mensaje", None) or f"{exc.__class__.__name__}: {exc}"
        raise JobFallido(f"{mensaje}. La limpieza de backups antiguos falló: {detalle}") from exc
    mensaje += (
        f". Retención ({settings.BACKUP_RETENTION_DAYS} días): {len(limpieza.eliminados)} backups eliminados, "
        f"{human_size(limpieza.bytes_liberados)} liberados"
    )
    return ResultadoJob("OK", mensaje)
