"""Job `backup_diario`: COMPLETO el día BACKUP_FULL_DAY, DIFERENCIAL los demás, y luego la retención."""

from __future__ import annotations

import time

from inventario.archivos import human_size
from inventario.errors import cantidad
from inventario.modules.backup.exceptions import BackupEnCurso, BackupError
from inventario.modules.backup.model import HistorialBackup, TipoBackup
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.service import BackupService, backup_tipo
from inventario.modules.planificador.model import EstadoEjecucion
from inventario.modules.planificador.resultado import ContextoJob, JobFallido, ResultadoJob

JOB_ID = "backup_diario"
# Un incremental en curso a la hora del diario termina en segundos: se le espera hasta esto.
INCREMENTAL_WAIT_S = 600.0
INCREMENTAL_POLL_S = 2.0


def run(ctx: ContextoJob) -> ResultadoJob:
    settings = ctx.runtime.settings
    # BACKUP_ENABLED apaga los backups programados; pedir el job a mano es una orden explícita.
    if not settings.BACKUP_ENABLED and not ctx.manual:
        return ResultadoJob(
            EstadoEjecucion.OMITIDO, "Backups deshabilitados (BACKUP_ENABLED=false): no se hizo el backup"
        )
    tipo = backup_tipo(ctx.programada_para, settings.BACKUP_FULL_DAY, settings.tz)
    service = BackupService(ctx.runtime, notifier=notify)
    # `ejecutado_por` del plan: SCHEDULER (también la recuperación al arrancar), MANUAL o el usuario.
    ejecutado_por = ctx.ejecutado_por if ctx.manual else "SCHEDULER"
    try:
        row = _run_after_incremental(service, tipo, ejecutado_por)
    except BackupEnCurso as exc:
        raise JobFallido(f"No se hizo el backup {tipo}: {exc.mensaje}") from exc
    except BackupError as exc:
        # Con fila ERROR, el motor ya creó la notificación ROJA; sin ella (no pudo ni empezar), avisa el job.
        raise JobFallido(exc.mensaje, notificado=exc.id_backup is not None) from exc
    mensaje = row.resumen()
    try:
        limpieza = service.cleanup()
    except Exception as exc:
        detalle = getattr(exc, "mensaje", None) or f"{exc.__class__.__name__}: {exc}"
        raise JobFallido(f"{mensaje}. La limpieza de backups antiguos falló: {detalle}") from exc
    mensaje += (
        f". Retención ({cantidad(settings.BACKUP_RETENTION_DAYS, 'día')}): "
        f"{cantidad(len(limpieza.eliminados), 'backup eliminado', 'backups eliminados')}, "
        f"{human_size(limpieza.bytes_liberados)} liberados"
    )
    if settings.BACKUP_REMOTO:
        mensaje += ". " + _fuera_del_sitio(ctx)
    return ResultadoJob(EstadoEjecucion.OK, mensaje)


def _run_after_incremental(service: BackupService, tipo: TipoBackup, ejecutado_por: str) -> HistorialBackup:
    """El backup del día; si lo ocupa un incremental (el job `backup_incremental`), lo espera."""
    deadline = time.monotonic() + INCREMENTAL_WAIT_S
    while True:
        try:
            return service.run(tipo, ejecutado_por)
        except BackupEnCurso:
            if service.running_type() != TipoBackup.INCREMENTAL or time.monotonic() > deadline:
                raise
            time.sleep(INCREMENTAL_POLL_S)


def _fuera_del_sitio(ctx: ContextoJob) -> str:
    """La copia del backup recién hecho (ya en marcha), lo que quedó pendiente de corridas anteriores
    y la retención remota. Un fallo aquí no hace fallar el job: el backup local está bien, y cada
    copia fallida ya quedó en ERROR con su aviso ROJO."""
    from inventario.modules.remoto.service import RemotoService, wait_background

    remoto = RemotoService(ctx.runtime)
    wait_background()  # la copia en segundo plano del backup recién hecho
    try:
        copiados, fallidos = remoto.copy_pending()
        partes = [f"Fuera del sitio: {cantidad(len(copiados), 'pendiente copiado', 'pendientes copiados')}"]
        if fallidos:
            partes.append(f"{len(fallidos)} con error ({', '.join(map(str, fallidos))})")
        retencion = remoto.cleanup()
        partes.append(
            f"retención remota ({cantidad(ctx.runtime.settings.remoto_retention_days, 'día')}): "
            f"{cantidad(len(retencion.eliminados), 'copia eliminada', 'copias eliminadas')}"
        )
        return ", ".join(partes)
    except Exception as exc:
        detalle = getattr(exc, "mensaje", None) or f"{exc.__class__.__name__}: {exc}"
        return f"Fuera del sitio: {detalle}"
