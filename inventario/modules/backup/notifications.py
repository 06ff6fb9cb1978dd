"""Eventos de backup → tabla `notificaciones`, con los títulos y semáforos del plan."""

from __future__ import annotations

from sqlalchemy.orm import Session

from inventario.modules.backup.model import HistorialBackup
from inventario.modules.notificaciones.model import Notificacion


def message_for(event: str, row: HistorialBackup, detail: str | None) -> tuple[str, str, str]:
    """(titulo, semaforo, mensaje) de un evento."""
    if event == "COMPLETADO":
        mensaje = (
            f"Archivo {row.nombre_archivo}: {row.tamanio_legible}, {row.duracion_segundos or 0:.2f} s, "
            f"{row.registros_totales} registros en {row.tablas_respaldadas} tablas. MD5 {row.hash_md5}."
        )
        if row.tipo == "DIFERENCIAL":
            mensaje += f" Base: backup completo {row.id_backup_base}."
        mensaje += _por(row)
        return f"✅ Backup {row.tipo} completado", "VERDE", mensaje
    if event == "ERROR":
        return (
            f"❌ Error en Backup {row.tipo}",
            "ROJO",
            f"{row.nombre_archivo}: {row.mensaje_error}{_por(row)}",
        )
    if event == "PROMOVIDO":
        return "⚠️ Backup DIFERENCIAL promovido a COMPLETO", "AMARILLO", row.nota or ""
    if event == "LIMPIEZA":
        return "🧹 Limpieza de backups", "VERDE", detail or ""
    raise ValueError(f"evento de backup desconocido: {event}")


def _por(row: HistorialBackup) -> str:
    return f" Ejecutado por {row.ejecutado_por}." if row.ejecutado_por else ""


def notify(session: Session, event: str, row: HistorialBackup, detail: str | None = None) -> None:
    titulo, semaforo, mensaje = message_for(event, row, detail)
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
    session.commit()
