from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base


class Lote(Auditado, Base):
    __tablename__ = "lotes"
    __table_args__ = (
        CheckConstraint("cantidad >= 0", name="cantidad_no_negativa"),
        UniqueConstraint("id_producto", "codigo_lote"),
    )

    id_lote: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Claves foráneas diferibles y sin cascada: el diferencial las aplica en una transacción.
    id_producto: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("productos.id_producto", deferrable=True), index=True
    )
    codigo_lote: Mapped[str] = mapped_column(String(60))
    fecha_vencimiento: Mapped[date | None] = mapped_column(Date, index=True)
    cantidad: Mapped[int] = mapped_column(Integer, server_default="0")
