"""Lotes. Sin HTTP. La cantidad solo cambia por movimientos: el alta registra su ENTRADA inicial."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from psycopg import errors as pg
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventario.errors import Conflicto, NoEncontrado
from inventario.modules.lotes.model import Lote
from inventario.modules.lotes.schemas import LoteActualizar, LoteCrear
from inventario.modules.movimientos.service import insert_movements
from inventario.modules.productos.service import require_product
from inventario.pagination import Pagina, page

MOTIVO_INICIAL = "Cantidad inicial del lote"


def expired() -> ColumnElement[bool]:
    """Vencido = fecha de vencimiento anterior a hoy (en la base). Sin fecha: nunca vence."""
    return and_(Lote.fecha_vencimiento.is_not(None), Lote.fecha_vencimiento < func.current_date())


def _select_lots() -> Select[Any]:
    return select(*Lote.__table__.c, expired().label("vencido"))


def list_lots(
    session: Session,
    pagina: Pagina,
    *,
    id_producto: int | None = None,
    vence_antes: date | None = None,
    con_stock: bool | None = None,
) -> dict[str, Any]:
    stmt = _select_lots()
    if id_producto is not None:
        stmt = stmt.where(Lote.id_producto == id_producto)
    if vence_antes is not None:
        stmt = stmt.where(Lote.fecha_vencimiento < vence_antes)
    if con_stock is not None:
        stmt = stmt.where(Lote.cantidad > 0 if con_stock else Lote.cantidad == 0)
    order = (Lote.fecha_vencimiento.asc().nulls_last(), Lote.id_lote)
    return page(session, stmt.order_by(*order), pagina, mappings=True)


def get_lot(session: Session, lot_id: int) -> dict[str, Any]:
    row = session.execute(_select_lots().where(Lote.id_lote == lot_id)).first()
    if row is None:
        raise NoEncontrado(f"No existe el lote {lot_id}")
    return dict(row._mapping)


@contextmanager
def _saving(session: Session, id_producto: int, codigo_lote: str | None) -> Iterator[None]:
    """Ejecuta el bloque y confirma; ante una violación de integridad revierte todo y la traduce."""
    try:
        yield
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if isinstance(exc.orig, pg.UniqueViolation):
            raise Conflicto(f"Ya existe el lote '{codigo_lote}' del producto {id_producto}") from None
        if isinstance(exc.orig, pg.ForeignKeyViolation):
            raise NoEncontrado(f"No existe el producto {id_producto}") from None
        raise


def create_lot(session: Session, data: LoteCrear, id_usuario: int) -> dict[str, Any]:
    """Crea el lote y, si trae cantidad, su movimiento ENTRADA, en la misma transacción."""
    require_product(session, data.id_producto, active=True)
    with _saving(session, data.id_producto, data.codigo_lote):
        lot = Lote(**data.model_dump())
        session.add(lot)
        session.flush()
        if data.cantidad > 0:
            insert_movements(
                session,
                [
                    {
                        "tipo": "ENTRADA",
                        "id_producto": data.id_producto,
                        "id_lote": lot.id_lote,
                        "cantidad": data.cantidad,
                        "motivo": MOTIVO_INICIAL,
                        "id_usuario": id_usuario,
                    }
                ],
            )
    return get_lot(session, lot.id_lote)


def update_lot(session: Session, lot_id: int, data: LoteActualizar) -> dict[str, Any]:
    lot = session.get(Lote, lot_id)
    if lot is None:
        raise NoEncontrado(f"No existe el lote {lot_id}")
    changes = data.cambios()
    with _saving(session, lot.id_producto, changes.get("codigo_lote")):
        for key, value in changes.items():
            setattr(lot, key, value)
    return get_lot(session, lot_id)


__all__ = ["create_lot", "expired", "get_lot", "list_lots", "update_lot"]
