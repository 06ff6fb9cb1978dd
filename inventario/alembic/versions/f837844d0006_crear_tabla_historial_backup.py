"""Crear tabla historial_backup (la del plan de mantenimiento, más columnas del diferencial).

Revision ID: f837844d0006
Revises: a0c1e5d7b001
"""

import sqlalchemy as sa
from alembic import op

from inventario.auditoria import install_sql

revision = "f837844d0006"
down_revision = "a0c1e5d7b001"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "historial_backup",
        sa.Column("id_backup", sa.BigInteger, primary_key=True),
        sa.Column("tipo", sa.String(20), nullable=False),
        sa.Column("nombre_archivo", sa.String(255), nullable=False),
        sa.Column("ruta_archivo", sa.Text, nullable=False),
        sa.Column("tamanio_bytes", sa.BigInteger),
        sa.Column("tamanio_legible", sa.String(50)),
        sa.Column("estado", sa.String(20), server_default="COMPLETADO"),
        sa.Column("mensaje_error", sa.Text),
        sa.Column("duracion_segundos", sa.Float),
        sa.Column("tablas_respaldadas", sa.BigInteger),
        sa.Column("registros_totales", sa.BigInteger),
        sa.Column("hash_md5", sa.String(32)),
        sa.Column(
            "id_backup_base",
            sa.BigInteger,
            sa.ForeignKey("historial_backup.id_backup", deferrable=True),
        ),
        sa.Column("fecha_creacion", TSTZ, server_default=sa.func.now()),
        sa.Column("fecha_eliminacion", TSTZ),
        sa.Column("eliminado", sa.Boolean, server_default=sa.false()),
        sa.Column("ejecutado_por", sa.String(100)),
        sa.Column("fecha_actualizacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("fecha_instantanea", TSTZ),
        sa.Column("fecha_corte", TSTZ),
        sa.Column("revision_esquema", sa.String(64)),
        sa.Column("huella_esquema", sa.String(32)),
        sa.Column("nota", sa.Text),
        sa.CheckConstraint("tipo IN ('COMPLETO', 'DIFERENCIAL')", name="ck_historial_backup_tipo"),
        sa.CheckConstraint(
            "estado IN ('EN_PROCESO', 'COMPLETADO', 'ERROR')", name="ck_historial_backup_estado"
        ),
    )
    op.create_index("ix_historial_backup_fecha_actualizacion", "historial_backup", ["fecha_actualizacion"])
    op.create_index(
        "ix_historial_backup_tipo_estado", "historial_backup", ["tipo", "estado", "fecha_creacion"]
    )
    op.create_index("uq_historial_backup_nombre_archivo", "historial_backup", ["nombre_archivo"], unique=True)
    for statement in install_sql("historial_backup", ["id_backup"]):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("historial_backup")
