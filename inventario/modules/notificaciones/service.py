"""Notificaciones. Sin HTTP. `create_notification` es la entrada para otros módulos (backup,
alertas): con `commit=False` solo agrega la fila a la transacción de quien llama."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from inventario.errors import Invalido, NoEncontrado
from inventario.modules.notificaciones.model import SEMAFOROS, Notificacion
from inventario.pagination import Pagina, page

_TITULO_MAX = 200
_ETIQUETA_MAX = 30


def create_notification(
    session: Session,
    *,
    tipo: str,
    titulo: str,
    mensaje: str,
    semaforo: str,
    referencia_tipo: str | None = None,
    referencia_id: int | None = None,
    commit: bool = True,
) -> Notificacion:
    if semaforo not in SEMAFOROS:
        raise Invalido(f"Semáforo inválido '{semaforo}': debe ser VERDE, AMARILLO o ROJO")
    for campo, valor in (("tipo", tipo), ("referencia_tipo", referencia_tipo)):
        if valor is not None and not 1 <= len(valor) <= _ETIQUETA_MAX:
            raise Invalido(f"{campo} debe tener entre 1 y {_ETIQUETA_MAX} caracteres")
    # Título y mensaje suelen llevar textos ajenos (errores, nombres de archivo): se recortan y
    # limpian en vez de hacer fallar el aviso de un problema.
    titulo = titulo.replace("\x00", "")
    if len(titulo) > _TITULO_MAX:
        titulo = titulo[: _TITULO_MAX - 1] + "…"
    notification = Notificacion(
        tipo=tipo,
        titulo=titulo,
        mensaje=mensaje.replace("\x00", ""),
        semaforo=semaforo,
        referencia_tipo=referencia_tipo,
        referencia_id=referencia_id,
    )
    session.add(notification)
    if commit:
        session.commit()
        session.refresh(notification)
    else:
        session.flush()
    return notification


def list_notifications(
    session: Session,
    pagina: Pagina,
    *,
    leida: bool | None = None,
    tipo: str | None = None,
    semaforo: str | None = None,
) -> dict[str, Any]:
    stmt = select(Notificacion)
    if leida is not None:
        stmt = stmt.where(Notificacion.leida.is_(leida))
    if tipo is not None:
        stmt = stmt.where(Notificacion.tipo == tipo)
    if semaforo is not None:
        stmt = stmt.where(Notificacion.semaforo == semaforo)
    unread = session.scalar(
        select(func.count()).select_from(Notificacion).where(Notificacion.leida.is_(False))
    )
    order = (Notificacion.fecha_creacion.desc(), Notificacion.id_notificacion.desc())
    return {**page(session, stmt.order_by(*order), pagina), "no_leidas": unread}


def get_notification(session: Session, notification_id: int) -> Notificacion:
    notification = session.get(Notificacion, notification_id, populate_existing=True)
    if notification is None:
        raise NoEncontrado(f"No existe la notificación {notification_id}")
    return notification


def mark_read(session: Session, notification_id: int) -> Notificacion:
    """Idempotente: la segunda vez no cambia nada (conserva la primera fecha_lectura)."""
    session.execute(
        update(Notificacion)
        .where(Notificacion.id_notificacion == notification_id, Notificacion.leida.is_(False))
        .values(leida=True, fecha_lectura=func.now()),
        execution_options={"synchronize_session": False},
    )
    notification = get_notification(session, notification_id)
    session.commit()
    return notification


def mark_all_read(session: Session) -> int:
    result = session.execute(
        update(Notificacion)
        .where(Notificacion.leida.is_(False))
        .values(leida=True, fecha_lectura=func.now()),
        execution_options={"synchronize_session": False},
    )
    session.commit()
    return result.rowcount  # type: ignore[attr-defined]  # un UPDATE devuelve un CursorResult


__all__ = [
    "create_notification",
    "get_notification",
    "list_notifications",
    "mark_all_read",
    "mark_read",
]
