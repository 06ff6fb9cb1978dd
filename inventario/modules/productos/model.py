from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base


class Producto(Auditado, Base):
    __tablename__ = "productos"
    __table_args__ = (CheckConstraint("stock_minimo >= 0", name="stock_minimo_no_negativo"),)

    id_producto: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    codigo: Mapped[str] = mapped_column(String(50), unique=True)
    nombre: Mapped[str] = mapped_column(String(200), index=True)
    descripcion: Mapped[str | None] = mapped_column(Text)
    unidad: Mapped[str] = mapped_column(String(30), server_default="unidad")
    stock_minimo: Mapped[int] = mapped_column(Integer, server_default="0")
    activo: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
