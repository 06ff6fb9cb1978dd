"""Crear tabla restauraciones: cada restauración de un backup (qué, de qué archivos, quién, con qué
resultado y cuánto tardó). La escribe `modules/backup/restore.py` en la base restaurada, una vez
que vuelve, conservando las filas que la base tenía antes (el backup no las trae).

Revision ID: a7c3e1f5d920
Revises: 9a4c1e7d3b58
"""

import sqlalchemy as sa
from alembic import op

from inventario.auditoria import install_sql

revision = "a7c3e1f5d920"
down_revision = "9a4c1e7d3b58"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "restauraciones",
        sa.Column("id_restauracion", sa.BigInteger, primary_key=True),
        sa.Column("fecha_inicio", TSTZ, nullable=False),
        sa.Column("duracion_segundos", sa.Float),
        sa.Column("resultado", sa.String(12), nullable=False),
        sa.Column("id_backup", sa.BigInteger),
        sa.Column("tipo", sa.String(20)),
        sa.Column("archivos", sa.Text, nullable=False),
        sa.Column("destino", sa.String(300), nullable=False),
        sa.Column("ejecutado_por", sa.String(100), nullable=False),
        sa.Column("filas", sa.BigInteger),
        sa.Column("mensaje", sa.Text),
        sa.Column("fecha_creacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("fecha_actualizacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("resultado IN ('OK', 'DIFERENCIAS', 'ERROR')", name="ck_restauraciones_resultado"),
    )
    op.create_index("ix_restauraciones_fecha_actualizacion", "restauraciones", ["fecha_actualizacion"])
    for statement in install_sql("restauraciones", ["id_restauracion"]):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("restauraciones")
