from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base

ROLES = ("ADMIN", "OPERADOR")


class Usuario(Auditado, Base):
    __tablename__ = "usuarios"
    __table_args__ = (CheckConstraint("rol IN ('ADMIN', 'OPERADOR')", name="rol"),)

    id_usuario: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    nombre_usuario: Mapped[str] = mapped_column(String(100), unique=True)
    nombre_completo: Mapped[str] = mapped_column(String(200), server_default="")
    email: Mapped[str | None] = mapped_column(String(255))
    hash_password: Mapped[str] = mapped_column(String(255))
    rol: Mapped[str] = mapped_column(String(20), server_default="OPERADOR")
    activo: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    intentos_fallidos: Mapped[int] = mapped_column(Integer, server_default="0")
    bloqueado_hasta: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ultimo_acceso: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
