"""Lotes (`/api/v1/lotes`). Todas las rutas exigen token.

- `GET   /lotes`       listado paginado por vencimiento (sin fecha al final); filtros
                       `id_producto`, `vence_antes` (AAAA-MM-DD: vencen antes de esa fecha) y
                       `con_stock`. Cualquier rol.
- `POST  /lotes`       crear un lote; su `cantidad` inicial queda registrada como movimiento
                       ENTRADA. ADMIN u OPERADOR (el operador recibe la mercadería).
- `GET   /lotes/{id}`  detalle. Cualquier rol.
- `PATCH /lotes/{id}`  cambiar `codigo_lote` o `fecha_vencimiento`; la cantidad solo cambia con
                       movimientos. ADMIN u OPERADOR.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from inventario.database import SessionDep
from inventario.modules.lotes import service
from inventario.modules.lotes.schemas import LoteActualizar, LoteCrear, LoteSalida
from inventario.modules.usuarios.dependencies import CurrentUser
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import MAX_BIGINT, Id, Listado, PaginaDep

router = APIRouter(prefix="/api/v1/lotes", tags=["lotes"], responses=CON_TOKEN)
NO_EXISTE = errores(404, 422, e404="No existe el lote")


@router.get("", response_model=Listado[LoteSalida], summary="Listar lotes", responses=errores(422))
def list_lots(
    session: SessionDep,
    _: CurrentUser,
    pagina: PaginaDep,
    id_producto: Annotated[
        int | None, Query(ge=1, le=MAX_BIGINT, description="Solo de este producto")
    ] = None,
    vence_antes: Annotated[
        date | None, Query(description="Lotes con fecha_vencimiento anterior a esta fecha")
    ] = None,
    con_stock: Annotated[bool | None, Query(description="true: cantidad > 0; false: cantidad = 0")] = None,
) -> dict[str, Any]:
    """Lotes paginados por vencimiento; filtra por producto, vencimiento y stock."""
    return service.list_lots(
        session, pagina, id_producto=id_producto, vence_antes=vence_antes, con_stock=con_stock
    )


@router.post(
    "",
    response_model=LoteSalida,
    status_code=201,
    summary="Crear un lote",
    responses=errores(
        404,
        409,
        422,
        e404="No existe el producto",
        e409="Ya existe ese lote del producto, o el producto está desactivado",
    ),
)
def create_lot(data: LoteCrear, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Registra un lote; su cantidad inicial queda como movimiento ENTRADA."""
    return service.create_lot(session, data, user.id_usuario)


@router.get("/{id_lote}", response_model=LoteSalida, summary="Ver un lote", responses=NO_EXISTE)
def get_lot(id_lote: Id, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    """Un lote con su cantidad y vencimiento."""
    return service.get_lot(session, id_lote)


@router.patch(
    "/{id_lote}",
    response_model=LoteSalida,
    summary="Modificar un lote",
    responses={**NO_EXISTE, **errores(409, e409="Ya existe ese código de lote en el producto")},
)
def update_lot(id_lote: Id, data: LoteActualizar, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    """Cambia el código o el vencimiento; la cantidad solo cambia con movimientos."""
    return service.update_lot(session, id_lote, data)
