"""Backups INCREMENTALES: el tipo en historial_backup y la tabla punto_restauracion.

`punto_restauracion` dice en qué backup está una base restaurada: la escribe al final cada archivo
de backup (completo, diferencial o incremental) y cada diferencial o incremental la consulta antes
de tocar nada, para negarse a aplicarse fuera de orden. En la base en uso queda vacía (o con el
último backup restaurado en ella); los backups no copian su contenido.

Revision ID: b7e2d4f6a913
Revises: b7e2d4f6a915
"""

import sqlalchemy as sa
from alembic import op

revision = "b7e2d4f6a913"
down_revision = "b7e2d4f6a915"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_constraint("ck_historial_backup_tipo", "historial_backup", type_="check")
    op.create_check_constraint(
        op.f("ck_historial_backup_tipo"),
        "historial_backup",
        "tipo IN ('COMPLETO', 'DIFERENCIAL', 'INCREMENTAL')",
    )
    op.create_table(
        "punto_restauracion",
        sa.Column("id_backup", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("tipo", sa.String(20), nullable=False),
        sa.Column("nombre_archivo", sa.String(255), nullable=False),
        sa.Column("id_backup_completo", sa.BigInteger, nullable=False),
        sa.Column("fecha_instantanea", TSTZ, nullable=False),
        sa.Column("fecha_restauracion", TSTZ, server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("punto_restauracion")
    op.execute("DELETE FROM historial_backup WHERE tipo = 'INCREMENTAL'")
    op.drop_constraint("ck_historial_backup_tipo", "historial_backup", type_="check")
    op.create_check_constraint(
        op.f("ck_historial_backup_tipo"), "historial_backup", "tipo IN ('COMPLETO', 'DIFERENCIAL')"
    )
