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
from inventario.pagination import Id, Listado, PaginaDep

router = APIRouter(prefix="/api/v1/productos", tags=["productos"])

Busqueda = Annotated[
    Texto(200, 0) | None,  # type: ignore[misc]
    Query(description="Texto contenido en el código o el nombre (sin distinguir mayúsculas)"),
]


@router.get("", response_model=Listado[ProductoSalida])
def list_products(
    session: SessionDep,
    _: CurrentUser,
    pagina: PaginaDep,
    q: Busqueda = None,
    activo: Annotated[bool | None, Query(description="Solo activos (true) o inactivos (false)")] = None,
    bajo_minimo: Annotated[
        bool | None, Query(description="true: stock_total < stock_minimo; false: lo contrario")
    ] = None,
) -> dict[str, Any]:
    items, total = service.list_products(
        session, pagina.offset, pagina.limit, q=q, activo=activo, bajo_minimo=bajo_minimo
    )
    return {"total": total, "offset": pagina.offset, "limit": pagina.limit, "items": items}


@router.post("", response_model=ProductoSalida, status_code=201)
def create_product(data: ProductoCrear, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    return service.create_product(session, data)


@router.get("/{id_producto}", response_model=ProductoSalida)
def get_product(id_producto: Id, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    return service.get_product(session, id_producto)


@router.patch("/{id_producto}", response_model=ProductoSalida)
def update_product(
    id_producto: Id, data: ProductoActualizar, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    if "activo" in data.model_fields_set and user.rol != "ADMIN":
        raise Prohibido("Se requiere el rol ADMIN para activar o desactivar productos")
    return service.update_product(session, id_producto, data)


@router.delete("/{id_producto}", response_model=ProductoSalida)
def deactivate_product(id_producto: Id, session: SessionDep, _: AdminUser) -> dict[str, Any]:
    return service.deactivate_product(session, id_producto)


@router.get("/{id_producto}/stock", response_model=StockProducto)
def product_stock(id_producto: Id, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    return service.product_stock(session, id_producto)
