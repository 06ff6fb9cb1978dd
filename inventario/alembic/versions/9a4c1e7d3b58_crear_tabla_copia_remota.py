"""Crear tabla copia_remota: el estado fuera del sitio de cada backup.

Una fila por backup del catálogo (`historial_backup`): PENDIENTE, COPIADO o ERROR, cuándo, qué objeto
quedó en el remoto con su tamaño y sumas, el último error y cuándo se reintenta. Nunca guarda
credenciales: `destino` es el BACKUP_REMOTO de entonces (nombre de remoto y ruta).

Revision ID: 9a4c1e7d3b58
Revises: b7e2d4f6a913
"""

import sqlalchemy as sa
from alembic import op

from inventario.auditoria import install_sql

revision = "9a4c1e7d3b58"
down_revision = "b7e2d4f6a913"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "copia_remota",
        sa.Column(
            "id_backup",
            sa.BigInteger,
            sa.ForeignKey("historial_backup.id_backup", deferrable=True),
            primary_key=True,
        ),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("fecha_estado", TSTZ, nullable=False, server_default=sa.func.now()),
        sa.Column("fecha_copia", TSTZ),
        sa.Column("destino", sa.String(500)),
        sa.Column("objeto", sa.String(300)),
        sa.Column("cifrado", sa.Boolean),
        sa.Column("tamanio_remoto", sa.BigInteger),
        sa.Column("hash_remoto", sa.String(32)),
        sa.Column("sha256_remoto", sa.String(64)),
        sa.Column("mensaje_error", sa.Text),
        sa.Column("intentos", sa.Integer, nullable=False, server_default="0"),
        sa.Column("proximo_intento", TSTZ),
        sa.Column("eliminado_remoto", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("fecha_eliminacion_remota", TSTZ),
        sa.Column("fecha_creacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("fecha_actualizacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("estado IN ('PENDIENTE', 'COPIADO', 'ERROR')", name="ck_copia_remota_estado"),
    )
    op.create_index("ix_copia_remota_fecha_actualizacion", "copia_remota", ["fecha_actualizacion"])
    op.create_index("ix_copia_remota_estado", "copia_remota", ["estado"])
    for statement in install_sql("copia_remota", ["id_backup"]):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("copia_remota")
