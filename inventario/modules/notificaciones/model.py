from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base

SEMAFOROS = ("VERDE", "AMARILLO", "ROJO")


class Notificacion(Auditado, Base):
    __tablename__ = "notificaciones"
    __table_args__ = (
        CheckConstraint("semaforo IN ('VERDE', 'AMARILLO', 'ROJO')", name="semaforo"),
        Index("ix_notificaciones_no_leidas", "leida", "fecha_creacion"),
        Index("ix_notificaciones_referencia", "referencia_tipo", "referencia_id"),
        Index(
            "ix_notificaciones_envio_pendiente",
            "envio",
            postgresql_where=text("envio IN ('PENDIENTE', 'RESUMEN')"),
        ),
    )

    id_notificacion: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tipo: Mapped[str] = mapped_column(String(30), index=True)
    titulo: Mapped[str] = mapped_column(String(200))
    mensaje: Mapped[str] = mapped_column(Text, server_default="")
    semaforo: Mapped[str] = mapped_column(String(10))
    leida: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    fecha_lectura: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A qué se refiere: p. ej. ("LOTE", 12), ("PRODUCTO", 3), ("BACKUP", 7).
    referencia_tipo: Mapped[str | None] = mapped_column(String(30))
    referencia_id: Mapped[int | None] = mapped_column(BigInteger)
    # Envío fuera de la aplicación (modules/envios): PENDIENTE hasta que el despachador la
    # planifica; luego ENVIO (va en su propio mensaje), RESUMEN (espera el resumen diario),
    # INCLUIDA (ya va en un resumen), DUPLICADA (su incidente ya se avisó y sigue abierto) u OMITIDA
    # (bajo NOTIFICACIONES_SEMAFORO_MINIMO o sin canales).
    envio: Mapped[str] = mapped_column(String(12), server_default="PENDIENTE")
    clave_incidente: Mapped[str | None] = mapped_column(String(200))
    id_mensaje: Mapped[int | None] = mapped_column(BigInteger)  # mensajes_salida, sin clave foránea
