"""Movimientos de stock. Sin HTTP.

Invariante: la cantidad de cada lote es la suma de sus movimientos. Por eso la cantidad de un lote
solo cambia aquí, y lote y movimientos se escriben en la misma transacción. Las restas son
`UPDATE ... WHERE cantidad >= :q` (o el reparto FEFO, que bloquea los lotes): dos salidas
simultáneas nunca dejan un lote en negativo; el CHECK `cantidad >= 0` es la última defensa.
"""

from __future__ import annotations

from typing import Any

from psycopg import errors as pg
from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from inventario.errors import Conflicto, DomainError, Invalido, NoEncontrado
from inventario.fechas import RangoFechas
from inventario.modules.lotes.model import Lote
from inventario.modules.movimientos.model import Movimiento
from inventario.modules.movimientos.schemas import MovimientoCrear
from inventario.modules.productos.schemas import MAX_INT
from inventario.modules.productos.service import require_product
from inventario.pagination import Pagina, page

# Reparto FEFO en una sola sentencia: bloquea los lotes candidatos (en orden de id, para que dos
# salidas concurrentes no se bloqueen en cruz), acumula por vencimiento con una ventana, descuenta
# solo si alcanza y devuelve lo tomado. Siempre devuelve al menos una fila, con lo disponible.
# FOR NO KEY UPDATE es el mismo cerrojo que toma el UPDATE; no frena las comprobaciones de FK.
FEFO_SQL = text(
    """
WITH candidatos AS MATERIALIZED (
    SELECT id_lote, fecha_vencimiento, cantidad
    FROM lotes
    WHERE id_producto = :id_producto
      AND cantidad > 0
      AND (fecha_vencimiento IS NULL OR fecha_vencimiento >= CURRENT_DATE)
    ORDER BY id_lote
    FOR NO KEY UPDATE
),
reparto AS (
    SELECT id_lote,
           SUM(cantidad) OVER fefo - cantidad AS previo,
           LEAST(cantidad, :cantidad - (SUM(cantidad) OVER fefo - cantidad)) AS tomar,
           SUM(cantidad) OVER () AS disponible
    FROM candidatos
    WINDOW fefo AS (ORDER BY fecha_vencimiento NULLS LAST, id_lote ROWS UNBOUNDED PRECEDING)
),
tomado AS (
    UPDATE lotes AS l
    SET cantidad = l.cantidad - r.tomar
    FROM reparto AS r
    WHERE l.id_lote = r.id_lote AND r.previo < :cantidad AND r.disponible >= :cantidad
    RETURNING l.id_lote, l.fecha_vencimiento, r.tomar, l.cantidad AS restante
)
SELECT t.id_lote, t.tomar, t.restante, d.disponible
FROM (SELECT COALESCE(MAX(disponible), 0) AS disponible FROM reparto) AS d
LEFT JOIN tomado AS t ON true
ORDER BY t.fecha_vencimiento NULLS LAST, t.id_lote
"""
)

EXPIRED_STOCK_SQL = text(
    "SELECT COALESCE(SUM(cantidad), 0) FROM lotes "
    "WHERE id_producto = :id_producto AND fecha_vencimiento < CURRENT_DATE"
)

_ARTICULO = {"ENTRADA": "Una ENTRADA", "SALIDA": "Una SALIDA", "AJUSTE": "Un AJUSTE"}


def insert_movements(session: Session, rows: list[dict[str, Any]]) -> list[Movimiento]:
    """Una sola sentencia INSERT ... RETURNING para todas las filas, en su orden. No confirma."""
    if not rows:
        return []
    stmt = insert(Movimiento).returning(Movimiento, sort_by_parameter_order=True)
    return list(session.scalars(stmt, rows))


def _check_rules(data: MovimientoCrear) -> None:
    quien = _ARTICULO[data.tipo]
    if data.tipo == "AJUSTE":
        if data.cantidad == 0:
            raise Invalido("La cantidad de un AJUSTE es la diferencia con signo y no puede ser 0")
        if not data.motivo:
            raise Invalido("Un AJUSTE requiere un motivo")
    elif data.cantidad <= 0:
        raise Invalido(f"La cantidad de {quien.lower()} debe ser mayor que 0")
    if data.tipo != "SALIDA" and data.id_lote is None:
        raise Invalido(f"{quien} requiere id_lote")


def _apply_to_lot(session: Session, id_producto: int, id_lote: int, delta: int, tipo: str) -> int:
    """Suma `delta` al lote si no queda negativo ni desborda; si no, explica por qué. Una SALIDA
    no toma de un lote vencido: eso no se vende, se da de baja con un AJUSTE con motivo."""
    stmt = update(Lote).where(Lote.id_lote == id_lote, Lote.id_producto == id_producto)
    if tipo == "SALIDA":
        stmt = stmt.where(
            or_(Lote.fecha_vencimiento.is_(None), Lote.fecha_vencimiento >= func.current_date())
        )
    if delta < 0:
        stmt = stmt.where(Lote.cantidad >= -delta)
    else:
        stmt = stmt.where(Lote.cantidad <= MAX_INT - delta)
    stmt = stmt.values(cantidad=Lote.cantidad + delta).returning(Lote.cantidad)
    remaining = session.scalar(stmt, execution_options={"synchronize_session": False})
    if remaining is not None:
        return remaining
    lot = session.execute(
        select(
            Lote.id_producto,
            Lote.codigo_lote,
            Lote.cantidad,
            Lote.fecha_vencimiento,
            (Lote.fecha_vencimiento < func.current_date()).label("vencido"),
        ).where(Lote.id_lote == id_lote)
    ).first()
    if lot is None:
        raise NoEncontrado(f"No existe el lote {id_lote}")
    if lot.id_producto != id_producto:
        raise Invalido(f"El lote {id_lote} no pertenece al producto {id_producto}")
    if tipo == "SALIDA" and lot.vencido:
        raise Conflicto(
            f"El lote '{lot.codigo_lote}' venció el {lot.fecha_vencimiento:%d/%m/%Y}: una SALIDA no puede "
            "tomar stock vencido. Para darlo de baja, registre un AJUSTE con cantidad negativa y un "
            "motivo (p. ej. 'vencido' o 'merma')."
        )
    if delta < 0:
        raise Conflicto(
            f"Stock insuficiente: disponible {lot.cantidad}, solicitado {-delta} (lote '{lot.codigo_lote}')"
        )
    raise Conflicto(f"La cantidad del lote '{lot.codigo_lote}' superaría el máximo permitido ({MAX_INT})")


def _take_fefo(session: Session, id_producto: int, quantity: int) -> list[tuple[int, int, int]]:
    """(id_lote, tomado, restante) por lote, en orden FEFO; Conflicto si no alcanza."""
    rows = session.execute(FEFO_SQL, {"id_producto": id_producto, "cantidad": quantity}).all()
    if rows[0].id_lote is None:
        expired = session.scalar(EXPIRED_STOCK_SQL, {"id_producto": id_producto}) or 0
        nota = (
            f" ({expired} más en lotes vencidos, que no salen con una SALIDA: se dan de baja con un AJUSTE)"
            if expired
            else ""
        )
        raise Conflicto(f"Stock insuficiente: disponible {rows[0].disponible}, solicitado {quantity}{nota}")
    return [(r.id_lote, r.tomar, r.restante) for r in rows]


def _translate_db_error(exc: DBAPIError) -> DomainError | None:
    if isinstance(exc.orig, pg.CheckViolation):
        return Conflicto("Stock insuficiente: un lote no puede quedar con cantidad negativa")
    if isinstance(exc.orig, pg.NumericValueOutOfRange):
        return Conflicto(f"La cantidad resultante superaría el máximo permitido ({MAX_INT})")
    if isinstance(exc.orig, pg.ForeignKeyViolation):
        return Conflicto("El producto, el lote o el usuario del movimiento ya no existe")
    return None


def register_movement(session: Session, data: MovimientoCrear, id_usuario: int) -> dict[str, Any]:
    """Aplica el movimiento y lo registra; todo o nada. Devuelve movimientos, lotes y stock."""
    _check_rules(data)
    try:
        # Sin entradas a productos dados de baja; salidas y ajustes sí, para vaciarlos.
        require_product(session, data.id_producto, active=data.tipo == "ENTRADA")
        if data.id_lote is not None:
            delta = -data.cantidad if data.tipo == "SALIDA" else data.cantidad
            remaining = _apply_to_lot(session, data.id_producto, data.id_lote, delta, data.tipo)
            taken = [(data.id_lote, delta, remaining)]
        else:
            taken = [
                (lot, -qty, rest) for lot, qty, rest in _take_fefo(session, data.id_producto, data.cantidad)
            ]
        movements = insert_movements(
            session,
            [
                {
                    "tipo": data.tipo,
                    "id_producto": data.id_producto,
                    "id_lote": lot,
                    "cantidad": delta,
                    "motivo": data.motivo or None,
                    "id_usuario": id_usuario,
                }
                for lot, delta, _ in taken
            ],
        )
        stock = session.scalar(
            select(func.coalesce(func.sum(Lote.cantidad), 0)).where(Lote.id_producto == data.id_producto)
        )
        session.commit()
    except DomainError:
        session.rollback()
        raise
    except DBAPIError as exc:
        session.rollback()
        domain = _translate_db_error(exc)
        if domain is None:
            raise
        raise domain from None
    return {
        "movimientos": movements,
        "lotes": [{"id_lote": lot, "cantidad": rest} for lot, _, rest in taken],
        "stock_total": stock,
    }


def list_movements(
    session: Session,
    pagina: Pagina,
    *,
    id_producto: int | None = None,
    id_lote: int | None = None,
    tipo: str | None = None,
    fechas: RangoFechas | None = None,
    total_exacto: bool = True,
) -> dict[str, Any]:
    """Movimientos del más nuevo al más viejo; `fechas` sobre `fecha_creacion`.
    `total_exacto=False`: la tabla crece sin tope (años de ventas); contar todas sus filas en cada
    página costaría más que la página, así que el total se cuenta solo si es chico y si no se estima
    (`pagination.count_or_estimate`)."""
    stmt = select(Movimiento).where(*(fechas.where(Movimiento.fecha_creacion) if fechas else []))
    if id_producto is not None:
        stmt = stmt.where(Movimiento.id_producto == id_producto)
    if id_lote is not None:
        stmt = stmt.where(Movimiento.id_lote == id_lote)
    if tipo is not None:
        stmt = stmt.where(Movimiento.tipo == tipo)
    order = (Movimiento.fecha_creacion.desc(), Movimiento.id_movimiento.desc())
    return page(session, stmt.order_by(*order), pagina, exacto=total_exacto)


def get_movement(session: Session, movement_id: int) -> Movimiento:
    movement = session.get(Movimiento, movement_id)
    if movement is None:
        raise NoEncontrado(f"No existe el movimiento {movement_id}")
    return movement


__all__ = [
    "get_movement",
    "insert_movements",
    "list_movements",
    "register_movement",
]
