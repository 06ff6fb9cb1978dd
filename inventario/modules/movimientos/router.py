"""Movimientos de stock (`/api/v1/movimientos`). Todas las rutas exigen token; cualquier rol.

- `POST /movimientos`       registrar ENTRADA, SALIDA o AJUSTE. El usuario es el del token.
    ENTRADA: `id_lote` obligatorio, `cantidad` > 0 (no se admite en productos desactivados).
    SALIDA: `cantidad` > 0; con `id_lote` descuenta de ese lote; sin él reparte por FEFO (vence
            primero, sin fecha al final) saltando los lotes vencidos. Si no alcanza: 409 y nada
            cambia. Puede generar un movimiento por cada lote tocado.
    AJUSTE: `id_lote` y `motivo` obligatorios; `cantidad` es la diferencia con signo, distinta de 0.
    Responde 201 con los movimientos creados, la cantidad final de los lotes tocados y el stock
    total del producto.
- `GET  /movimientos`       listado paginado, del más nuevo al más viejo; filtros `id_producto`,
                            `id_lote`, `tipo`, `desde` y `hasta` sobre `fecha_creacion`
                            (`inventario/fechas.py`: `hasta=AAAA-MM-DD` incluye todo ese día).
                            `total` es exacto hasta 10 000 filas después de la página y estimado
                            más allá (`total_exacto: false`); `?total_exacto=true` lo cuenta entero.
- `GET  /movimientos/{id}`  detalle.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from inventario.database import SessionDep
from inventario.fechas import RangoFechasDep
from inventario.modules.movimientos import service
from inventario.modules.movimientos.model import Movimiento
from inventario.modules.movimientos.schemas import (
    MovimientoCrear,
    MovimientoSalida,
    ResultadoMovimiento,
    TipoMovimiento,
)
from inventario.modules.usuarios.dependencies import CurrentUser
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import MAX_BIGINT, Id, Listado, PaginaDep, TotalExactoDep

router = APIRouter(prefix="/api/v1/movimientos", tags=["movimientos"], responses=CON_TOKEN)

IdFiltro = Annotated[int | None, Query(ge=1, le=MAX_BIGINT)]


@router.post(
    "",
    response_model=ResultadoMovimiento,
    status_code=201,
    summary="Registrar un movimiento",
    responses=errores(
        404,
        409,
        422,
        e404="No existe el lote o el producto",
        e409="Stock insuficiente, lote vencido en una SALIDA o producto desactivado: nada cambia",
    ),
)
def register_movement(data: MovimientoCrear, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """ENTRADA, SALIDA (sin lote: por vencimiento, FEFO) o AJUSTE con motivo."""
    return service.register_movement(session, data, user.id_usuario)


@router.get(
    "", response_model=Listado[MovimientoSalida], summary="Listar movimientos", responses=errores(422)
)
def list_movements(
    session: SessionDep,
    _: CurrentUser,
    pagina: PaginaDep,
    fechas: RangoFechasDep,
    id_producto: IdFiltro = None,
    id_lote: IdFiltro = None,
    tipo: Annotated[TipoMovimiento | None, Query()] = None,
    total_exacto: TotalExactoDep = False,
) -> dict[str, Any]:
    """Movimientos del más nuevo al más viejo; filtra por producto, lote, tipo y fechas
    (`hasta=AAAA-MM-DD` incluye todo ese día). `total` es exacto si es chico o con
    `total_exacto=true`; si no, una estimación y `total_exacto` es false."""
    return service.list_movements(
        session,
        pagina,
        id_producto=id_producto,
        id_lote=id_lote,
        tipo=tipo,
        fechas=fechas,
        total_exacto=total_exacto,
    )


@router.get(
    "/{id_movimiento}",
    response_model=MovimientoSalida,
    summary="Ver un movimiento",
    responses=errores(404, 422, e404="No existe el movimiento"),
)
def get_movement(id_movimiento: Id, session: SessionDep, _: CurrentUser) -> Movimiento:
    """Un movimiento por su id."""
    return service.get_movement(session, id_movimiento)
