"""Eventos de backup → tabla `notificaciones`, con los títulos y semáforos del plan."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from inventario.modules.backup.model import EstadoBackup, HistorialBackup, TipoBackup
from inventario.modules.notificaciones.model import Notificacion


class Evento(StrEnum):
    COMPLETADO = "COMPLETADO"
    ERROR = "ERROR"
    PROMOVIDO = (
        "PROMOVIDO"  # un diferencial o incremental pedido que se hizo completo (detalle: el tipo pedido)
    )
    LIMPIEZA = "LIMPIEZA"


def message_for(
    event: Evento, row: HistorialBackup, detail: str | None, primero: bool = False
) -> tuple[str, str, str]:
    """(titulo, semaforo, mensaje) de un evento. `primero`: nunca se completó un backup COMPLETO
    antes de `row` (instalación nueva), así que la promoción es lo esperado, no un aviso."""
    if event == Evento.COMPLETADO:
        message = (
            f"Archivo {row.nombre_archivo}: {row.tamanio_legible}, {row.duracion_segundos or 0:.2f} s, "
            f"{row.registros_totales} registros en {row.tablas_respaldadas} tablas. MD5 {row.hash_md5}."
        )
        if row.tipo != TipoBackup.COMPLETO:
            message += f" Base: backup {row.id_backup_base}."
        message += _por(row)
        return f"✅ Backup {row.tipo} completado", "VERDE", message
    if event == Evento.ERROR:
        return (
            f"❌ Error en Backup {row.tipo}",
            "ROJO",
            f"{row.nombre_archivo}: {row.mensaje_error}{_por(row)}",
        )
    if event == Evento.PROMOVIDO and primero:
        return (
            f"ℹ️ Primer backup: el {(detail or TipoBackup.DIFERENCIAL).lower()} se hace COMPLETO",
            "VERDE",
            f"{row.nota or ''} Es lo normal en el primer backup de una instalación.".lstrip(),
        )
    if event == Evento.PROMOVIDO:
        return f"⚠️ Backup {detail or TipoBackup.DIFERENCIAL} promovido a COMPLETO", "AMARILLO", row.nota or ""
    if event == Evento.LIMPIEZA:
        return "🧹 Limpieza de backups", "VERDE", detail or ""
    raise ValueError(f"evento de backup desconocido: {event}")


def _por(row: HistorialBackup) -> str:
    return f" Ejecutado por {row.ejecutado_por}." if row.ejecutado_por else ""


def _hubo_completo(session: Session, row: HistorialBackup) -> bool:
    """¿Se completó alguna vez un COMPLETO antes de `row`, aunque luego se borrara? Si sí, la
    promoción dice que algo rompió la cadena (archivo ausente, esquema, TRUNCATE, restauración)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    HistorialBackup.tipo == TipoBackup.COMPLETO,
                    HistorialBackup.estado == EstadoBackup.COMPLETADO,
                    HistorialBackup.id_backup < row.id_backup,
                )
            )
        )
    )


def notify(session: Session, event: Evento, row: HistorialBackup, detail: str | None = None) -> None:
    """Añade la notificación del evento a `session`; confirmarla es de quien es dueño de la sesión."""
    if event == Evento.COMPLETADO and row.tipo == TipoBackup.INCREMENTAL:
        # Cada 15 minutos serían 96 avisos al día: el éxito de un incremental queda en
        # historial_backup y ejecuciones_job; sus fallos y promociones sí se notifican.
        return
    primero = event == Evento.PROMOVIDO and not _hubo_completo(session, row)
    titulo, semaforo, mensaje = message_for(event, row, detail, primero)
    session.add(
        Notificacion(
            tipo="BACKUP",
            titulo=titulo,
            mensaje=mensaje,
            semaforo=semaforo,
            referencia_tipo="BACKUP",
            referencia_id=row.id_backup,
        )
    )
