"""Estado durable de los envíos. El despachador (`service.py`) es el único que escribe aquí.

- `incidentes`: un problema abierto (p. ej. "el backup falla", "el lote 12 está vencido con stock").
  Mientras sigue abierto, otra notificación del mismo problema no se vuelve a enviar.
- `mensajes_salida`: lo que se envía (un aviso ROJO, el resumen diario, un ping). `clave` es única:
  dos instancias que planifican a la vez no pueden crear dos mensajes del mismo incidente.
- `envios`: un mensaje en un canal: PENDIENTE, ENVIADA, ERROR (se reintenta en `proximo_intento`) o
  DESCARTADA (el canal ya no está configurado). `canal` es un identificador estable sin secretos.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base

ESTADOS_ENVIO = ("PENDIENTE", "ENVIADA", "ERROR", "DESCARTADA")
TIPOS_MENSAJE = ("ALERTA", "RESUMEN", "PING")


class Incidente(Auditado, Base):
    __tablename__ = "incidentes"

    clave: Mapped[str] = mapped_column(String(200), primary_key=True)
    abierto: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Sin clave foránea: vaciar las notificaciones (TRUNCATE) no depende de los incidentes.
    id_notificacion: Mapped[int | None] = mapped_column(BigInteger)
    fecha_apertura: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    fecha_resolucion: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MensajeSalida(Auditado, Base):
    __tablename__ = "mensajes_salida"
    __table_args__ = (
        CheckConstraint("tipo IN ('ALERTA', 'RESUMEN', 'PING')", name="tipo"),
        UniqueConstraint("clave", name="uq_mensajes_salida_clave"),
    )

    id_mensaje: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    clave: Mapped[str] = mapped_column(String(200))
    tipo: Mapped[str] = mapped_column(String(12))
    semaforo: Mapped[str] = mapped_column(String(10))
    asunto: Mapped[str] = mapped_column(String(300))
    cuerpo: Mapped[str] = mapped_column(Text)


class Envio(Auditado, Base):
    __tablename__ = "envios"
    __table_args__ = (
        CheckConstraint("estado IN ('PENDIENTE', 'ENVIADA', 'ERROR', 'DESCARTADA')", name="estado"),
        UniqueConstraint("id_mensaje", "canal", name="uq_envios_mensaje_canal"),
        Index(
            "ix_envios_por_enviar",
            "proximo_intento",
            postgresql_where=text("estado IN ('PENDIENTE', 'ERROR') AND proximo_intento IS NOT NULL"),
        ),
        Index("ix_envios_canal_estado", "canal", "estado"),
    )

    id_envio: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id_mensaje: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("mensajes_salida.id_mensaje", deferrable=True)
    )
    canal: Mapped[str] = mapped_column(String(100))
    estado: Mapped[str] = mapped_column(String(12), server_default="PENDIENTE")
    intentos: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    ultimo_error: Mapped[str | None] = mapped_column(Text)
    # NULL: no se intenta más (enviada, descartada o se agotaron los reintentos).
    proximo_intento: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    fecha_envio: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
