"""Envío de notificaciones fuera de la aplicación: incidentes, mensajes_salida y envios.

`notificaciones` gana `envio` (PENDIENTE hasta que el despachador la planifica), `clave_incidente` e
`id_mensaje`. Las notificaciones que ya existían quedan OMITIDA: configurar un canal no envía la
historia entera.

Revision ID: b7e2d4f6a915
Revises: e5a9c3d1f402
"""

import sqlalchemy as sa
from alembic import op

from inventario.auditoria import install_sql

revision = "b7e2d4f6a915"
down_revision = "e5a9c3d1f402"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def _auditado() -> list[sa.Column]:
    return [
        sa.Column("fecha_creacion", TSTZ, server_default=sa.func.now(), nullable=False),
        sa.Column("fecha_actualizacion", TSTZ, server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "incidentes",
        sa.Column("clave", sa.String(200), primary_key=True),
        sa.Column("abierto", sa.Boolean, nullable=False, server_default=sa.true()),
        # Sin clave foránea hacia notificaciones (ni desde ellas): borrar o vaciar (TRUNCATE) las
        # notificaciones no debe depender del historial de envíos.
        sa.Column("id_notificacion", sa.BigInteger),
        sa.Column("fecha_apertura", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("fecha_resolucion", TSTZ),
        *_auditado(),
    )
    op.create_table(
        "mensajes_salida",
        sa.Column("id_mensaje", sa.BigInteger, primary_key=True),
        sa.Column("clave", sa.String(200), nullable=False),
        sa.Column("tipo", sa.String(12), nullable=False),
        sa.Column("semaforo", sa.String(10), nullable=False),
        sa.Column("asunto", sa.String(300), nullable=False),
        sa.Column("cuerpo", sa.Text, nullable=False),
        *_auditado(),
        sa.UniqueConstraint("clave", name="uq_mensajes_salida_clave"),
        sa.CheckConstraint("tipo IN ('ALERTA', 'RESUMEN', 'PING')", name="ck_mensajes_salida_tipo"),
    )
    op.create_table(
        "envios",
        sa.Column("id_envio", sa.BigInteger, primary_key=True),
        sa.Column(
            "id_mensaje",
            sa.BigInteger,
            sa.ForeignKey(
                "mensajes_salida.id_mensaje", deferrable=True
            ),  # como todas: diferible, sin cascada
            nullable=False,
        ),
        sa.Column("canal", sa.String(100), nullable=False),
        sa.Column("estado", sa.String(12), nullable=False, server_default="PENDIENTE"),
        sa.Column("intentos", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("ultimo_error", sa.Text),
        sa.Column("proximo_intento", TSTZ, server_default=sa.text("now()")),
        sa.Column("fecha_envio", TSTZ),
        *_auditado(),
        sa.UniqueConstraint("id_mensaje", "canal", name="uq_envios_mensaje_canal"),
        sa.CheckConstraint(
            "estado IN ('PENDIENTE', 'ENVIADA', 'ERROR', 'DESCARTADA')", name="ck_envios_estado"
        ),
    )
    op.create_index(
        "ix_envios_por_enviar",
        "envios",
        ["proximo_intento"],
        postgresql_where=sa.text("estado IN ('PENDIENTE', 'ERROR') AND proximo_intento IS NOT NULL"),
    )
    op.create_index("ix_envios_canal_estado", "envios", ["canal", "estado"])
    for table, pk in (("incidentes", "clave"), ("mensajes_salida", "id_mensaje"), ("envios", "id_envio")):
        op.create_index(f"ix_{table}_fecha_actualizacion", table, ["fecha_actualizacion"])
        for statement in install_sql(table, [pk]):
            op.execute(statement)

    # Las existentes no se envían; las nuevas nacen PENDIENTE.
    op.add_column("notificaciones", sa.Column("envio", sa.String(12), nullable=True))
    op.execute("UPDATE notificaciones SET envio = 'OMITIDA'")
    op.alter_column("notificaciones", "envio", nullable=False, server_default="PENDIENTE")
    op.add_column("notificaciones", sa.Column("clave_incidente", sa.String(200)))
    op.add_column("notificaciones", sa.Column("id_mensaje", sa.BigInteger))
    op.create_index(
        "ix_notificaciones_envio_pendiente",
        "notificaciones",
        ["envio"],
        postgresql_where=sa.text("envio IN ('PENDIENTE', 'RESUMEN')"),
    )


def downgrade() -> None:
    op.drop_index("ix_notificaciones_envio_pendiente", table_name="notificaciones")
    op.drop_column("notificaciones", "id_mensaje")
    op.drop_column("notificaciones", "clave_incidente")
    op.drop_column("notificaciones", "envio")
    op.drop_table("envios")
    op.drop_table("mensajes_salida")
    op.drop_table("incidentes")
