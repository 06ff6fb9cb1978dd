"""Consultas de la API sobre `historial_backup`: estadísticas y listados. Solo lectura.

"Backup almacenado" (lo que cuentan los campos del plan en `/estadisticas`) es un backup
COMPLETADO y no eliminado: uno en ERROR o EN_PROCESO no tiene archivo utilizable, y uno eliminado
por la retención ya no ocupa disco.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from inventario.modules.backup.model import HistorialBackup

_ESTADISTICAS = text(
    """
    WITH h AS (
        SELECT tipo, estado, eliminado, tamanio_bytes, fecha_creacion, id_backup,
               (estado = 'COMPLETADO' AND eliminado IS NOT TRUE) AS vivo
        FROM historial_backup
    )
    SELECT
        count(*) FILTER (WHERE vivo)                                       AS total_backups,
        count(*) FILTER (WHERE vivo AND tipo = 'COMPLETO')                 AS backups_completos,
        count(*) FILTER (WHERE vivo AND tipo = 'DIFERENCIAL')              AS backups_diferenciales,
        count(*) FILTER (WHERE vivo AND tipo = 'INCREMENTAL')              AS backups_incrementales,
        coalesce(sum(tamanio_bytes) FILTER (WHERE vivo), 0)::bigint        AS espacio_usado_bytes,
        max(fecha_creacion) FILTER (WHERE vivo AND tipo = 'COMPLETO')      AS ultimo_backup_completo,
        max(fecha_creacion) FILTER (WHERE vivo AND tipo = 'DIFERENCIAL')   AS ultimo_backup_diferencial,
        max(fecha_creacion) FILTER (WHERE vivo AND tipo = 'INCREMENTAL')   AS ultimo_backup_incremental,
        count(*) FILTER (WHERE estado = 'ERROR')                           AS backups_con_error,
        count(*) FILTER (WHERE eliminado IS TRUE)                          AS backups_eliminados,
        max(id_backup) FILTER (WHERE estado = 'EN_PROCESO')                AS backup_en_curso,
        (SELECT jsonb_build_object('id_backup', u.id_backup, 'tipo', u.tipo, 'estado', u.estado,
                                   'fecha', u.fecha_creacion)
           FROM historial_backup u
          ORDER BY u.fecha_creacion DESC NULLS LAST, u.id_backup DESC LIMIT 1) AS ultimo_backup,
        (SELECT jsonb_build_object('id_backup', e.id_backup, 'tipo', e.tipo, 'fecha', e.fecha_creacion,
                                   'mensaje', e.mensaje_error)
           FROM historial_backup e
          WHERE e.estado = 'ERROR'
          ORDER BY e.fecha_creacion DESC NULLS LAST, e.id_backup DESC LIMIT 1) AS ultimo_error
    FROM h
    """
)


def estadisticas(session: Session) -> dict[str, Any]:
    """Los contadores de `/estadisticas` en una sola consulta (agregados con FILTER)."""
    row = session.execute(_ESTADISTICAS).mappings().one()
    datos = dict(row)
    ultimo = datos.get("ultimo_backup")
    datos["ultimo_backup_estado"] = ultimo["estado"] if ultimo else None
    return datos


def listar(
    session: Session,
    offset: int,
    limit: int,
    *,
    tipo: str | None = None,
    estado: str | None = None,
    desde: datetime | None = None,
    hasta: datetime | None = None,
    incluir_eliminados: bool = False,
) -> tuple[list[HistorialBackup], int]:
    """Backups del más nuevo al más viejo (por `fecha_creacion`, luego por id)."""
    filtros = []
    if tipo is not None:
        filtros.append(HistorialBackup.tipo == tipo)
    if estado is not None:
        filtros.append(HistorialBackup.estado == estado)
    if desde is not None:
        filtros.append(HistorialBackup.fecha_creacion >= desde)
    if hasta is not None:
        filtros.append(HistorialBackup.fecha_creacion <= hasta)
    if not incluir_eliminados:
        filtros.append(HistorialBackup.eliminado.is_not(True))
    total = session.scalar(select(func.count()).select_from(HistorialBackup).where(*filtros)) or 0
    items = session.scalars(
        select(HistorialBackup)
        .where(*filtros)
        .order_by(HistorialBackup.fecha_creacion.desc().nulls_last(), HistorialBackup.id_backup.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(items), total


def diferenciales_de(session: Session, id_backup: int) -> list[int]:
    """Los diferenciales vigentes (no eliminados, no fallidos) que se aplican sobre este completo."""
    return list(
        session.scalars(
            select(HistorialBackup.id_backup)
            .where(
                HistorialBackup.id_backup_base == id_backup,
                HistorialBackup.eliminado.is_not(True),
                HistorialBackup.estado != "ERROR",
            )
            .order_by(HistorialBackup.id_backup)
        )
    )
