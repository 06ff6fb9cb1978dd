"""Productos (`/api/v1/productos`). Todas las rutas exigen token.

- `GET    /productos`             listado paginado; filtros `q` (código o nombre), `activo`,
                                  `bajo_minimo`. Cada producto trae `stock_total`. Cualquier rol.
- `POST   /productos`             crear. ADMIN u OPERADOR (el operador da de alta mercadería).
- `GET    /productos/{id}`        detalle con `stock_total` y `cantidad_lotes`. Cualquier rol.
- `PATCH  /productos/{id}`        modificar. ADMIN u OPERADOR; cambiar `activo` solo ADMIN.
- `DELETE /productos/{id}`        desactivar (`activo=false`); nunca se borra un producto con
                                  historial. Solo ADMIN.
- `GET    /productos/{id}/stock`  stock total, disponible (sin vencidos), vencido y por lote,
                                  ordenado por vencimiento. Cualquier rol.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from inventario.database import SessionDep
from inventario.errors import Prohibido
from inventario.modules.productos import service
from inventario.modules.productos.schemas import (
    ProductoActualizar,
    ProductoCrear,
    ProductoSalida,
    StockProducto,
    Texto,
)
from inventario.modules.usuarios.dependencies import AdminUser, CurrentUser
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import Id, Listado, PaginaDep

router = APIRouter(prefix="/api/v1/productos", tags=["productos"], responses=CON_TOKEN)
NO_EXISTE = errores(404, 422, e404="No existe el producto")

# Texto() construye el tipo anotado en tiempo de ejecución: mypy no puede verlo como tipo.
Busqueda = Annotated[  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    Texto(200, 0) | None,
    Query(description="Texto contenido en el código o el nombre (sin distinguir mayúsculas)"),
]


@router.get("", response_model=Listado[ProductoSalida], summary="Listar productos", responses=errores(422))
def list_products(
    session: SessionDep,
    _: CurrentUser,
    pagina: PaginaDep,
    q: Busqueda = None,  # type: ignore[valid-type]  # ver Busqueda
    activo: Annotated[bool | None, Query(description="Solo activos (true) o inactivos (false)")] = None,
    bajo_minimo: Annotated[
        bool | None,
        Query(description="true: stock_disponible (sin vencidos) < stock_minimo; false: lo contrario"),
    ] = None,
) -> dict[str, Any]:
    """Productos paginados con su `stock_total`; busca por código o nombre y filtra bajo mínimo."""
    return service.list_products(session, pagina, q=q, activo=activo, bajo_minimo=bajo_minimo)


@router.post(
    "",
    response_model=ProductoSalida,
    status_code=201,
    summary="Crear un producto",
    responses=errores(409, 422, e409="Ya existe un producto con ese código"),
)
def create_product(data: ProductoCrear, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    """Da de alta un producto (código único). ADMIN u OPERADOR."""
    return service.create_product(session, data)


@router.get("/{id_producto}", response_model=ProductoSalida, summary="Ver un producto", responses=NO_EXISTE)
def get_product(id_producto: Id, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    """Un producto con su `stock_total` y la cantidad de lotes."""
    return service.get_product(session, id_producto)


@router.patch(
    "/{id_producto}",
    response_model=ProductoSalida,
    summary="Modificar un producto",
    responses={
        **NO_EXISTE,
        **errores(
            403, 409, e403="Cambiar `activo` requiere ADMIN", e409="Ya existe un producto con ese código"
        ),
    },
)
def update_product(
    id_producto: Id, data: ProductoActualizar, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    """Cambia los datos del producto; activar o desactivar solo ADMIN."""
    if "activo" in data.model_fields_set and user.rol != "ADMIN":
        raise Prohibido("Se requiere el rol ADMIN para activar o desactivar productos")
    return service.update_product(session, id_producto, data)


@router.delete(
    "/{id_producto}",
    response_model=ProductoSalida,
    summary="Desactivar un producto",
    responses={**NO_EXISTE, **errores(403)},
)
def deactivate_product(id_producto: Id, session: SessionDep, _: AdminUser) -> dict[str, Any]:
    """Lo marca inactivo (nunca se borra un producto con historial). Solo ADMIN."""
    return service.deactivate_product(session, id_producto)


@router.get(
    "/{id_producto}/stock",
    response_model=StockProducto,
    summary="Stock de un producto por lote",
    responses=NO_EXISTE,
)
def product_stock(id_producto: Id, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    """Stock total, disponible (sin vencidos), vencido y por lote, en orden de vencimiento."""
    return service.product_stock(session, id_producto)
