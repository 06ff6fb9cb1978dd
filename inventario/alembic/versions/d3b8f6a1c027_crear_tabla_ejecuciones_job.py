"""Crear tabla ejecuciones_job: el registro de corridas del planificador.

Una fila por (job, ámbito, hora programada), única: la instancia que logra insertarla ejecuta el
job y las demás no (ver `inventario/modules/planificador/service.py`).

Revision ID: d3b8f6a1c027
Revises: c4e7a9f2b310
"""

import sqlalchemy as sa
from alembic import op

from inventario.auditoria import install_sql

revision = "d3b8f6a1c027"
down_revision = "c4e7a9f2b310"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ejecuciones_job",
        sa.Column("id_ejecucion", sa.BigInteger, primary_key=True),
        sa.Column("job_id", sa.String(50), nullable=False),
        sa.Column("ambito", sa.String(500), nullable=False, server_default=""),
        sa.Column("programada_para", TSTZ, nullable=False),
        sa.Column("inicio", TSTZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("fin", TSTZ),
        sa.Column("estado", sa.String(12), nullable=False),
        sa.Column("mensaje", sa.Text),
        sa.Column("instancia", sa.String(200), nullable=False),
        sa.Column("manual", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ejecutado_por", sa.String(100)),
        sa.Column("fecha_creacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("fecha_actualizacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("job_id", "ambito", "programada_para", name="uq_ejecuciones_job_corrida"),
        sa.CheckConstraint(
            "estado IN ('EN_CURSO', 'OK', 'ERROR', 'OMITIDO')", name="ck_ejecuciones_job_estado"
        ),
    )
    op.create_index("ix_ejecuciones_job_fecha_actualizacion", "ejecuciones_job", ["fecha_actualizacion"])
    for statement in install_sql("ejecuciones_job", ["id_ejecucion"]):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("ejecuciones_job")
