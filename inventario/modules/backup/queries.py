"""Consultas de la API sobre `historial_backup`: estadísticas y listados. Solo lectura.

"Backup almacenado" (lo que cuentan los campos del plan en `/estadisticas`) es un backup
COMPLETADO y no eliminado: uno en ERROR o EN_PROCESO no tiene archivo utilizable, y uno eliminado
por la retención ya no ocupa disco.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from inventario.fechas import RangoFechas
from inventario.modules.backup.model import EstadoBackup, HistorialBackup, TipoBackup

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
    *,
    tipo: str | None = None,
    estado: str | None = None,
    fechas: RangoFechas | None = None,
    incluir_eliminados: bool = False,
) -> Select[HistorialBackup]:
    """Backups del más nuevo al más viejo (por `fecha_creacion`, luego por id), para `pagination.page`."""
    filtros = fechas.where(HistorialBackup.fecha_creacion) if fechas else []
    if tipo is not None:
        filtros.append(HistorialBackup.tipo == tipo)
    if estado is not None:
        filtros.append(HistorialBackup.estado == estado)
    if not incluir_eliminados:
        filtros.append(HistorialBackup.eliminado.is_not(True))
    return (
        select(HistorialBackup)
        .where(*filtros)
        .order_by(HistorialBackup.fecha_creacion.desc().nulls_last(), HistorialBackup.id_backup.desc())
    )


def diferenciales_de(session: Session, id_backup: int) -> list[int]:
    """Los diferenciales vigentes (no eliminados, no fallidos) que se aplican sobre este completo."""
    return list(
        session.scalars(
            select(HistorialBackup.id_backup)
            .where(
                HistorialBackup.id_backup_base == id_backup,
                HistorialBackup.tipo == TipoBackup.DIFERENCIAL,  # no los incrementales que lo siguen
                HistorialBackup.eliminado.is_not(True),
                HistorialBackup.estado != EstadoBackup.ERROR,
            )
            .order_by(HistorialBackup.id_backup)
        )
    )
