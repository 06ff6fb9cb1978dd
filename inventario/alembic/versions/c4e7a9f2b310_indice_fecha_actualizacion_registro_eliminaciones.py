"""Índice por fecha_actualizacion en registro_eliminaciones.

El esquema inicial solo le dio (tabla, fecha_actualizacion); el modelo (`Auditado`) declara además
el índice simple, como en todas las tablas, y el diferencial lee las tumbas por fecha sin tabla
(copia de registro_eliminaciones y búsqueda de TRUNCATE desde el corte).

Revision ID: c4e7a9f2b310
Revises: f837844d0006
"""

from alembic import op

revision = "c4e7a9f2b310"
down_revision = "f837844d0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_registro_eliminaciones_fecha_actualizacion",
        "registro_eliminaciones",
        ["fecha_actualizacion"],
    )


def downgrade() -> None:
    op.drop_index("ix_registro_eliminaciones_fecha_actualizacion", table_name="registro_eliminaciones")
