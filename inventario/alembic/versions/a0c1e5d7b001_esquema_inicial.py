"""Esquema inicial: usuarios, productos, lotes, movimientos, notificaciones y auditoría.

Revision ID: a0c1e5d7b001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from inventario.auditoria import DROP_FUNCTIONS_SQL, FUNCTIONS_SQL, install_sql

revision = "a0c1e5d7b001"
down_revision = None
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def audit_columns() -> list[sa.Column]:
    return [
        sa.Column("fecha_creacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("fecha_actualizacion", TSTZ, server_default=sa.func.now(), nullable=False),
    ]


TABLES = {
    "registro_eliminaciones": ["id_eliminacion"],
    "usuarios": ["id_usuario"],
    "productos": ["id_producto"],
    "lotes": ["id_lote"],
    "movimientos": ["id_movimiento"],
    "notificaciones": ["id_notificacion"],
}


def upgrade() -> None:
    op.create_table(
        "registro_eliminaciones",
        sa.Column("id_eliminacion", sa.BigInteger, primary_key=True),
        sa.Column("tabla", sa.String(63), nullable=False),
        sa.Column("clave", postgresql.JSONB, nullable=True),
        sa.Column("fecha_creacion_fila", TSTZ, nullable=True),
        *audit_columns(),
    )
    op.create_index(
        "ix_registro_eliminaciones_tabla", "registro_eliminaciones", ["tabla", "fecha_actualizacion"]
    )
    op.create_table(
        "usuarios",
        sa.Column("id_usuario", sa.BigInteger, primary_key=True),
        sa.Column("nombre_usuario", sa.String(100), nullable=False, unique=True),
        sa.Column("nombre_completo", sa.String(200), nullable=False, server_default=""),
        sa.Column("email", sa.String(255)),
        sa.Column("hash_password", sa.String(255), nullable=False),
        sa.Column("rol", sa.String(20), nullable=False, server_default="OPERADOR"),
        sa.Column("activo", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("intentos_fallidos", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bloqueado_hasta", TSTZ),
        sa.Column("ultimo_acceso", TSTZ),
        *audit_columns(),
        sa.CheckConstraint("rol IN ('ADMIN', 'OPERADOR')", name="rol"),
    )
    op.create_table(
        "productos",
        sa.Column("id_producto", sa.BigInteger, primary_key=True),
        sa.Column("codigo", sa.String(50), nullable=False, unique=True),
        sa.Column("nombre", sa.String(200), nullable=False),
        sa.Column("descripcion", sa.Text),
        sa.Column("unidad", sa.String(30), nullable=False, server_default="unidad"),
        sa.Column("stock_minimo", sa.Integer, nullable=False, server_default="0"),
        sa.Column("activo", sa.Boolean, nullable=False, server_default=sa.true()),
        *audit_columns(),
        sa.CheckConstraint("stock_minimo >= 0", name="stock_minimo_no_negativo"),
    )
    op.create_index("ix_productos_nombre", "productos", ["nombre"])
    op.create_table(
        "lotes",
        sa.Column("id_lote", sa.BigInteger, primary_key=True),
        sa.Column(
            "id_producto",
            sa.BigInteger,
            sa.ForeignKey("productos.id_producto", deferrable=True),
            nullable=False,
        ),
        sa.Column("codigo_lote", sa.String(60), nullable=False),
        sa.Column("fecha_vencimiento", sa.Date),
        sa.Column("cantidad", sa.Integer, nullable=False, server_default="0"),
        *audit_columns(),
        sa.CheckConstraint("cantidad >= 0", name="cantidad_no_negativa"),
        sa.UniqueConstraint("id_producto", "codigo_lote"),
    )
    op.create_index("ix_lotes_id_producto", "lotes", ["id_producto"])
    op.create_index("ix_lotes_fecha_vencimiento", "lotes", ["fecha_vencimiento"])
    op.create_table(
        "movimientos",
        sa.Column("id_movimiento", sa.BigInteger, primary_key=True),
        sa.Column("tipo", sa.String(10), nullable=False),
        sa.Column(
            "id_producto",
            sa.BigInteger,
            sa.ForeignKey("productos.id_producto", deferrable=True),
            nullable=False,
        ),
        sa.Column("id_lote", sa.BigInteger, sa.ForeignKey("lotes.id_lote", deferrable=True), nullable=False),
        sa.Column("cantidad", sa.Integer, nullable=False),
        sa.Column("motivo", sa.Text),
        sa.Column(
            "id_usuario",
            sa.BigInteger,
            sa.ForeignKey("usuarios.id_usuario", deferrable=True),
            nullable=False,
        ),
        *audit_columns(),
        sa.CheckConstraint("tipo IN ('ENTRADA', 'SALIDA', 'AJUSTE')", name="tipo"),
        sa.CheckConstraint("cantidad <> 0", name="cantidad_no_cero"),
    )
    for col in ("id_producto", "id_lote", "id_usuario"):
        op.create_index(f"ix_movimientos_{col}", "movimientos", [col])
    op.create_table(
        "notificaciones",
        sa.Column("id_notificacion", sa.BigInteger, primary_key=True),
        sa.Column("tipo", sa.String(30), nullable=False),
        sa.Column("titulo", sa.String(200), nullable=False),
        sa.Column("mensaje", sa.Text, nullable=False, server_default=""),
        sa.Column("semaforo", sa.String(10), nullable=False),
        sa.Column("leida", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("fecha_lectura", TSTZ),
        sa.Column("referencia_tipo", sa.String(30)),
        sa.Column("referencia_id", sa.BigInteger),
        *audit_columns(),
        sa.CheckConstraint("semaforo IN ('VERDE', 'AMARILLO', 'ROJO')", name="semaforo"),
    )
    op.create_index("ix_notificaciones_tipo", "notificaciones", ["tipo"])
    op.create_index("ix_notificaciones_no_leidas", "notificaciones", ["leida", "fecha_creacion"])
    op.create_index("ix_notificaciones_referencia", "notificaciones", ["referencia_tipo", "referencia_id"])

    op.execute(FUNCTIONS_SQL)
    for table, pk in TABLES.items():
        if table != "registro_eliminaciones":
            op.create_index(f"ix_{table}_fecha_actualizacion", table, ["fecha_actualizacion"])
        for statement in install_sql(table, pk, track_deletes=table != "registro_eliminaciones"):
            op.execute(statement)


def downgrade() -> None:
    for table in reversed(list(TABLES)):
        op.drop_table(table)
    op.execute(DROP_FUNCTIONS_SQL)
