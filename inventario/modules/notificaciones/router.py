"""Notificaciones (`/api/v1/notificaciones`). Todas las rutas exigen token.

Las notificaciones son del sistema (backups, alertas de stock), no de un usuario: marcar una como
leída la marca para todos.

- `GET  /notificaciones`              listado paginado, de la más nueva a la más vieja; filtros
                                      `leida`, `tipo`, `semaforo`. Trae `no_leidas` (todas las no
                                      leídas, sin filtros). Cualquier rol.
- `POST /notificaciones`              crear un aviso a mano (p. ej. "inventario anual el viernes").
                                      Solo ADMIN: los avisos llegan a todos.
- `GET  /notificaciones/{id}`         detalle. Cualquier rol.
- `POST /notificaciones/{id}/leer`    marcar como leída (idempotente). Cualquier rol.
- `POST /notificaciones/leer-todas`   marcar todas como leídas; devuelve cuántas. Cualquier rol.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from inventario.database import SessionDep
from inventario.modules.notificaciones import service
from inventario.modules.notificaciones.model import Notificacion
from inventario.modules.notificaciones.schemas import (
    Etiqueta,
    LecturaMasiva,
    ListadoNotificaciones,
    NotificacionCrear,
    NotificacionSalida,
    Semaforo,
)
from inventario.modules.usuarios.dependencies import AdminUser, CurrentUser
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import Id, PaginaDep

router = APIRouter(prefix="/api/v1/notificaciones", tags=["notificaciones"], responses=CON_TOKEN)
NO_EXISTE = errores(404, 422, e404="No existe la notificación")


@router.get("", response_model=ListadoNotificaciones, summary="Listar notificaciones", responses=errores(422))
def list_notifications(
    session: SessionDep,
    _: CurrentUser,
    pagina: PaginaDep,
    leida: Annotated[bool | None, Query()] = None,
    tipo: Annotated[Etiqueta | None, Query()] = None,
    semaforo: Annotated[Semaforo | None, Query()] = None,
) -> dict[str, Any]:
    """De la más nueva a la más vieja, con el total de no leídas; filtra por leída, tipo y semáforo."""
    return service.list_notifications(session, pagina, leida=leida, tipo=tipo, semaforo=semaforo)


@router.post(
    "",
    response_model=NotificacionSalida,
    status_code=201,
    summary="Crear un aviso",
    responses=errores(403, 422),
)
def create_notification(data: NotificacionCrear, session: SessionDep, _: AdminUser) -> Notificacion:
    """Un aviso a mano para todos (p. ej. inventario anual). Solo ADMIN."""
    return service.create_notification(session, **data.model_dump())


@router.post("/leer-todas", response_model=LecturaMasiva, summary="Marcar todas como leídas")
def mark_all_read(session: SessionDep, _: CurrentUser) -> dict[str, int]:
    """Marca leídas todas las notificaciones y dice cuántas."""
    return {"marcadas": service.mark_all_read(session)}


@router.get(
    "/{id_notificacion}",
    response_model=NotificacionSalida,
    summary="Ver una notificación",
    responses=NO_EXISTE,
)
def get_notification(id_notificacion: Id, session: SessionDep, _: CurrentUser) -> Notificacion:
    """Una notificación por su id."""
    return service.get_notification(session, id_notificacion)


@router.post(
    "/{id_notificacion}/leer",
    response_model=NotificacionSalida,
    summary="Marcar como leída",
    responses=NO_EXISTE,
)
def mark_read(id_notificacion: Id, session: SessionDep, _: CurrentUser) -> Notificacion:
    """Marca una notificación como leída para todos (idempotente)."""
    return service.mark_read(session, id_notificacion)
