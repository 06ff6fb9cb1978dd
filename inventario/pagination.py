"""Paginación común de los listados."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel, BeforeValidator
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

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


def count(session: Session, stmt: Select[Any]) -> int:
    """Cuántas filas daría `stmt` sin paginar."""
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def listado(items: list[Any], total: int, pagina: Pagina) -> dict[str, Any]:
    """El cuerpo de `Listado`."""
    return {"total": total, "offset": pagina.offset, "limit": pagina.limit, "items": items}


def page(session: Session, stmt: Select[Any], pagina: Pagina, *, mappings: bool = False) -> dict[str, Any]:
    """Una página de `stmt` (ya filtrada y ordenada) con el total de filas: el cuerpo de `Listado`.
    `mappings`: cada fila como dict de sus columnas (consultas con columnas calculadas); si no, la
    entidad de la primera columna."""
    limited = stmt.offset(pagina.offset).limit(pagina.limit)
    if mappings:
        items: list[Any] = [dict(r._mapping) for r in session.execute(limited)]
    else:
        items = list(session.scalars(limited))
    return listado(items, count(session, stmt), pagina)


MAX_BIGINT = 2**63 - 1


def id_path(description: str = "Identificador") -> Any:
    return Path(ge=1, le=MAX_BIGINT, description=description)


def _solo_digitos(value: object) -> object:
    # Sin esto pydantic acepta " 1", "+1" o "1_000" como 1 en la ruta.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("debe ser un número entero positivo (solo dígitos)")
    return value


Id = Annotated[int, BeforeValidator(_solo_digitos), id_path()]
