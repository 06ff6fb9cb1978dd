"""Productos. Sin HTTP. El stock no se guarda en el producto: es `SUM(lotes.cantidad)` en SQL."""

from __future__ import annotations

from typing import Any

from psycopg import errors as pg
from sqlalchemy import Select, and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventario.errors import Conflicto, Invalido, NoEncontrado
from inventario.modules.lotes.model import Lote
from inventario.modules.productos.model import Producto
from inventario.modules.productos.schemas import ProductoActualizar, ProductoCrear
from inventario.pagination import Pagina, count, listado


def like_pattern(text: str) -> str:
    """`%texto%` con los comodines del usuario escapados (se usa con escape='\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_EXPIRED = and_(Lote.fecha_vencimiento.is_not(None), Lote.fecha_vencimiento < func.current_date())


def _stock_of(products: Any) -> Any:
    """Stock de cada producto de `products` (tabla o subconsulta), agregado solo sobre sus lotes
    (LATERAL + índice de lotes.id_producto): una página cuesta lo mismo con 1 000 o 1 000 000 de lotes."""
    return (
        select(
            func.coalesce(func.sum(Lote.cantidad), 0).label("stock_total"),
            func.coalesce(func.sum(Lote.cantidad).filter(~_EXPIRED), 0).label("stock_disponible"),
            func.count().label("cantidad_lotes"),
        )
        .where(Lote.id_producto == products.c.id_producto)
        .lateral("stock")
    )


def _with_stock(products: Any = None) -> Select[Any]:
    """Productos con stock_total, cantidad_lotes y bajo_minimo."""
    products = Producto.__table__ if products is None else products
    stock = _stock_of(products)
    return select(
        *products.c,
        stock.c.stock_total,
        stock.c.stock_disponible,
        stock.c.cantidad_lotes,
        # Lo vencido no se puede vender: no cuenta para el mínimo.
        (stock.c.stock_disponible < products.c.stock_minimo).label("bajo_minimo"),
    ).join(stock, true())


def list_products(
    session: Session,
    pagina: Pagina,
    *,
    q: str | None = None,
    activo: bool | None = None,
    bajo_minimo: bool | None = None,
) -> dict[str, Any]:
    conditions = []
    if q:
        pattern = like_pattern(q)
        conditions.append(
            or_(Producto.codigo.ilike(pattern, escape="\\"), Producto.nombre.ilike(pattern, escape="\\"))
        )
    if activo is not None:
        conditions.append(Producto.activo.is_(activo))
    order = (Producto.nombre, Producto.id_producto)
    if bajo_minimo is None:
        # Paginar productos primero y agregar el stock solo de la página.
        products = select(Producto).where(*conditions).order_by(*order)
        current = products.offset(pagina.offset).limit(pagina.limit).subquery("p")
        stmt = _with_stock(current).order_by(current.c.nombre, current.c.id_producto)
        return listado([dict(r._mapping) for r in session.execute(stmt)], count(session, products), pagina)
    # Filtrar por el stock obliga a agregarlo para todos los productos: una sola agregación de
    # lotes (hash) y el total por ventana en la misma consulta, en vez de un LATERAL por producto
    # dos veces (página y conteo). Con 200 000 lotes, la página Inventario de la consola pasó de
    # 172 a 63 ms (docs/benchmarks.md, medida 8).
    stock = (
        select(
            Lote.id_producto,
            func.sum(Lote.cantidad).label("stock_total"),
            func.sum(Lote.cantidad).filter(~_EXPIRED).label("stock_disponible"),
            func.count().label("cantidad_lotes"),
        )
        .group_by(Lote.id_producto)
        .subquery("stock")
    )
    disponible = func.coalesce(stock.c.stock_disponible, 0)
    below = disponible < Producto.stock_minimo
    filtered: Select[Any] = (
        select(
            *Producto.__table__.c,
            func.coalesce(stock.c.stock_total, 0).label("stock_total"),
            disponible.label("stock_disponible"),
            func.coalesce(stock.c.cantidad_lotes, 0).label("cantidad_lotes"),
            below.label("bajo_minimo"),
            func.count().over().label("_total"),
        )
        .outerjoin(stock, stock.c.id_producto == Producto.id_producto)
        .where(*conditions, below if bajo_minimo else ~below)
        .order_by(*order)
    )
    rows = [dict(r._mapping) for r in session.execute(filtered.offset(pagina.offset).limit(pagina.limit))]
    # Una página vacía (más allá del final) no trae el total: se cuenta aparte.
    total = rows[0]["_total"] if rows else count(session, filtered)
    for row in rows:
        del row["_total"]
    return listado(rows, total, pagina)


def get_product(session: Session, product_id: int) -> dict[str, Any]:
    row = session.execute(_with_stock().where(Producto.id_producto == product_id)).first()
    if row is None:
        raise NoEncontrado(f"No existe el producto {product_id}")
    return dict(row._mapping)


def names(session: Session, product_ids: set[int]) -> dict[int, str]:
    """Nombre de cada producto pedido (para rotular listados de lotes sin unir tablas enteras)."""
    if not product_ids:
        return {}
    rows = session.execute(
        select(Producto.id_producto, Producto.nombre).where(Producto.id_producto.in_(product_ids))
    )
    return {r.id_producto: r.nombre for r in rows}


def require_product(session: Session, product_id: int, *, active: bool = False) -> Producto:
    """El producto, o 404; con `active`, 409 si está desactivado."""
    product = session.get(Producto, product_id)
    if product is None:
        raise NoEncontrado(f"No existe el producto {product_id}")
    if active and not product.activo:
        raise Conflicto(f"El producto {product_id} ('{product.codigo}') está desactivado")
    return product


def _save(session: Session, codigo: str | None) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if isinstance(exc.orig, pg.UniqueViolation):
            raise Conflicto(f"Ya existe un producto con el código '{codigo}'") from None
        if isinstance(exc.orig, pg.CheckViolation):
            raise Invalido("Los datos del producto no cumplen las reglas (stock_minimo >= 0)") from None
        raise


def create_product(session: Session, data: ProductoCrear) -> dict[str, Any]:
    product = Producto(**data.model_dump())
    session.add(product)
    _save(session, data.codigo)
    return get_product(session, product.id_producto)


def update_product(session: Session, product_id: int, data: ProductoActualizar) -> dict[str, Any]:
    product = require_product(session, product_id)
    changes = data.cambios()
    for key, value in changes.items():
        setattr(product, key, value)
    _save(session, changes.get("codigo"))
    return get_product(session, product_id)


def deactivate_product(session: Session, product_id: int) -> dict[str, Any]:
    """Baja lógica: un producto con historial nunca se borra. Idempotente."""
    product = require_product(session, product_id)
    product.activo = False
    session.commit()
    return get_product(session, product_id)


def product_stock(session: Session, product_id: int) -> dict[str, Any]:
    product = get_product(session, product_id)
    expired = _EXPIRED
    lots = session.execute(
        select(
            Lote.id_lote,
            Lote.codigo_lote,
            Lote.fecha_vencimiento,
            Lote.cantidad,
            expired.label("vencido"),
        )
        .where(Lote.id_producto == product_id)
        .order_by(Lote.fecha_vencimiento.asc().nulls_last(), Lote.id_lote)
    )
    sums = session.execute(
        select(
            func.coalesce(func.sum(Lote.cantidad).filter(~expired), 0).label("disponible"),
            func.coalesce(func.sum(Lote.cantidad).filter(expired), 0).label("vencido"),
        ).where(Lote.id_producto == product_id)
    ).one()
    return {
        **{k: product[k] for k in ("id_producto", "codigo", "nombre", "unidad", "stock_minimo")},
        "stock_total": product["stock_total"],
        "stock_disponible": sums.disponible,
        "stock_vencido": sums.vencido,
        "bajo_minimo": product["bajo_minimo"],
        "lotes": [dict(r._mapping) for r in lots],
    }


__all__ = [
    "create_product",
    "deactivate_product",
    "get_product",
    "like_pattern",
    "list_products",
    "names",
    "product_stock",
    "require_product",
    "update_product",
]
