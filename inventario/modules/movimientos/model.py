from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base

TIPOS_MOVIMIENTO = ("ENTRADA", "SALIDA", "AJUSTE")


class Movimiento(Auditado, Base):
    __tablename__ = "movimientos"
    __table_args__ = (
        CheckConstraint("tipo IN ('ENTRADA', 'SALIDA', 'AJUSTE')", name="tipo"),
        CheckConstraint("cantidad <> 0", name="cantidad_no_cero"),
        # El listado va del más nuevo al más viejo (migración e5a9c3d1f402).
        Index("ix_movimientos_fecha_creacion_id", "fecha_creacion", "id_movimiento"),
    )

    id_movimiento: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tipo: Mapped[str] = mapped_column(String(10))
    id_producto: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("productos.id_producto", deferrable=True), index=True
    )
    id_lote: Mapped[int] = mapped_column(BigInteger, ForeignKey("lotes.id_lote", deferrable=True), index=True)
    # Con signo: positivo suma al lote, negativo resta (SALIDA siempre negativa).
    cantidad: Mapped[int] = mapped_column(Integer)
    motivo: Mapped[str | None] = mapped_column(Text)
    id_usuario: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("usuarios.id_usuario", deferrable=True), index=True
    )
