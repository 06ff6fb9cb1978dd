"""Paginación común de los listados."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import ClauseElement, Executable, Select, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

T = TypeVar("T")


class Pagina(BaseModel):
    offset: int
    limit: int


def pagina(
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Registros a saltar")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Registros por página")] = 50,
) -> Pagina:
    return Pagina(offset=offset, limit=limit)


PaginaDep = Annotated[Pagina, Depends(pagina)]


class Listado(BaseModel, Generic[T]):
    total: int
    offset: int
    limit: int
    items: list[T]
    total_exacto: bool = Field(
        True,
        description="false: `total` es una estimación (listados grandes sin `total_exacto=true`)",
    )


# Listados que crecen sin tope (movimientos): se cuenta exacto hasta esta cantidad de filas después
# de la página; más allá, `total` es la estimación del planificador y `total_exacto` es false.
MARGEN_CONTEO_EXACTO = 10_000

TotalExactoDep = Annotated[
    bool,
    Query(
        description=(
            "true: `total` exacto (cuenta todas las filas del filtro; caro en tablas grandes). "
            f"Por omisión es exacto hasta {MARGEN_CONTEO_EXACTO} filas después de la página y "
            "estimado más allá; `total_exacto` en la respuesta dice cuál es."
        )
    ),
]


def count(session: Session, stmt: Select[Any]) -> int:
    """Cuántas filas daría `stmt` sin paginar."""
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON)` de una consulta, con sus parámetros ligados como en la consulta."""

    inherit_cache = False

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt


@compiles(_Explain)
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.stmt, **kw)


def estimate(session: Session, stmt: Select[Any]) -> int:
    """Filas que el planificador de PostgreSQL espera de `stmt` (estadísticas de ANALYZE y el
    tamaño actual de la tabla): no lee las filas."""
    plan = session.execute(_Explain(stmt.order_by(None))).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


def count_or_estimate(session: Session, stmt: Select[Any], pagina: Pagina) -> tuple[int, bool]:
    """(total, exacto): cuenta a lo sumo hasta MARGEN_CONTEO_EXACTO filas después de la página; si
    hay más, estima. La estimación nunca es menor que lo ya contado."""
    cap = pagina.offset + pagina.limit + MARGEN_CONTEO_EXACTO
    capped = (
        session.scalar(select(func.count()).select_from(stmt.order_by(None).limit(cap + 1).subquery())) or 0
    )
    if capped <= cap:
        return capped, True
    return max(estimate(session, stmt), capped), False


def listado(items: list[Any], total: int, pagina: Pagina, *, exacto: bool = True) -> dict[str, Any]:
    """El cuerpo de `Listado`."""
    return {
        "total": total,
        "offset": pagina.offset,
        "limit": pagina.limit,
        "items": items,
        "total_exacto": exacto,
    }


def page(
    session: Session, stmt: Select[Any], pagina: Pagina, *, mappings: bool = False, exacto: bool = True
) -> dict[str, Any]:
    """Una página de `stmt` (ya filtrada y ordenada) con el total de filas: el cuerpo de `Listado`.
    `mappings`: cada fila como dict de sus columnas (consultas con columnas calculadas); si no, la
    entidad de la primera columna. `exacto=False`: total exacto solo si es chico (`count_or_estimate`)."""
    limited = stmt.offset(pagina.offset).limit(pagina.limit)
    if mappings:
        items: list[Any] = [dict(r._mapping) for r in session.execute(limited)]
    else:
        items = list(session.scalars(limited))
    if exacto:
        return listado(items, count(session, stmt), pagina)
    total, exact = count_or_estimate(session, stmt, pagina)
    return listado(items, total, pagina, exacto=exact)


MAX_BIGINT = 2**63 - 1


def id_path(description: str = "Identificador") -> Any:
    return Path(ge=1, le=MAX_BIGINT, description=description)


def _solo_digitos(value: object) -> object:
    # Sin esto pydantic acepta " 1", "+1" o "1_000" como 1 en la ruta.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("debe ser un número entero positivo (solo dígitos)")
    return value


Id = Annotated[int, BeforeValidator(_solo_digitos), id_path()]
