"""Auditoría en la base: sellos de fecha y registro de eliminaciones.

Los triggers sellan `fecha_creacion`/`fecha_actualizacion` con `now()` en toda escritura (ORM o SQL
crudo) y anotan en `registro_eliminaciones` cada fila borrada o cuya clave cambió. El backup
diferencial se apoya en ambos. Con `SET LOCAL inventario.restaurando = 'on'` (lo hace el archivo
diferencial) los triggers no tocan nada, para que lo aplicado quede idéntico al origen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base

RESTORE_GUC = "inventario.restaurando"


class RegistroEliminacion(Auditado, Base):
    __tablename__ = "registro_eliminaciones"
    __table_args__ = (Index("ix_registro_eliminaciones_tabla", "tabla", "fecha_actualizacion"),)

    id_eliminacion: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tabla: Mapped[str] = mapped_column(String(63))
    # Clave primaria de la fila eliminada; NULL = la tabla entera (TRUNCATE).
    clave: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # `fecha_creacion` de la fila eliminada: dice si ya estaba en el último backup completo.
    fecha_creacion_fila: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


FUNCTIONS_SQL = f"""
CREATE OR REPLACE FUNCTION auditoria_sellar() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{RESTORE_GUC}', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.fecha_creacion := now();
    ELSE
        NEW.fecha_creacion := OLD.fecha_creacion;
    END IF;
    NEW.fecha_actualizacion := now();
    RETURN NEW;
END
$$;

-- Una fila cuya clave primaria cambió empieza su vida ahora: así el diferencial distingue las
-- filas que ya estaban en el completo de las que no. Corre después de auditoria_sellar (orden
-- alfabético de los triggers) y solo cuando la clave cambia (cláusula WHEN).
CREATE OR REPLACE FUNCTION auditoria_nueva_clave() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{RESTORE_GUC}', true) IS DISTINCT FROM 'on' THEN
        NEW.fecha_creacion := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION auditoria_eliminacion() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    clave_vieja jsonb;
BEGIN
    IF current_setting('{RESTORE_GUC}', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO public.registro_eliminaciones (tabla, clave, fecha_creacion_fila)
        VALUES (TG_TABLE_NAME, NULL, NULL);
        RETURN NULL;
    END IF;
    SELECT jsonb_object_agg(c, to_jsonb(OLD) -> c) INTO clave_vieja FROM unnest(TG_ARGV) AS c;
    IF TG_OP = 'UPDATE' AND clave_vieja = (
        SELECT jsonb_object_agg(c, to_jsonb(NEW) -> c) FROM unnest(TG_ARGV) AS c
    ) THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.registro_eliminaciones (tabla, clave, fecha_creacion_fila)
    VALUES (TG_TABLE_NAME, clave_vieja, (to_jsonb(OLD) ->> 'fecha_creacion')::timestamptz);
    RETURN NULL;
END
$$;
"""

DROP_FUNCTIONS_SQL = """
DROP FUNCTION IF EXISTS auditoria_eliminacion();
DROP FUNCTION IF EXISTS auditoria_sellar();
DROP FUNCTION IF EXISTS auditoria_nueva_clave();
"""


def install_sql(table: str, pk_columns: list[str], *, track_deletes: bool = True) -> list[str]:
    """Sentencias que ponen la auditoría en una tabla. Toda migración que cree una tabla las usa."""
    pk_list = ", ".join(pk_columns)
    pk_args = ", ".join(f"'{c}'" for c in pk_columns)
    old_pk = ", ".join(f"OLD.{c}" for c in pk_columns)
    new_pk = ", ".join(f"NEW.{c}" for c in pk_columns)
    statements = [
        f"CREATE TRIGGER auditoria_sellar BEFORE INSERT OR UPDATE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION auditoria_sellar()",
        f"CREATE TRIGGER auditoria_sellar_clave BEFORE UPDATE OF {pk_list} ON {table} FOR EACH ROW "
        f"WHEN (ROW({old_pk}) IS DISTINCT FROM ROW({new_pk})) EXECUTE FUNCTION auditoria_nueva_clave()",
    ]
    if track_deletes:
        statements += [
            f"CREATE TRIGGER auditoria_eliminacion AFTER DELETE OR UPDATE OF {pk_list} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION auditoria_eliminacion({pk_args})",
            f"CREATE TRIGGER auditoria_vaciado BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION auditoria_eliminacion()",
        ]
    return statements


__all__ = ["FUNCTIONS_SQL", "RESTORE_GUC", "RegistroEliminacion", "install_sql"]
