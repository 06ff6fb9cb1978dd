"""Usuarios y autenticación. Sin HTTP: recibe datos, devuelve modelos o lanza DomainError."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventario.errors import Conflicto, NoAutorizado, NoEncontrado, cantidad
from inventario.modules.usuarios.model import Usuario
from inventario.modules.usuarios.schemas import UsuarioActualizar, UsuarioCrear
from inventario.modules.usuarios.throttle import LoginThrottle
from inventario.pagination import Pagina, page
from inventario.security import hash_password, verify_password

sesiones_log = logging.getLogger("inventario.sesiones")
log = logging.getLogger(__name__)


def create_user(session: Session, data: UsuarioCrear) -> Usuario:
    user = Usuario(
        nombre_usuario=data.nombre_usuario,
        nombre_completo=data.nombre_completo,
        email=data.email,
        hash_password=hash_password(data.password),
        rol=data.rol,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflicto(f"Ya existe el usuario '{data.nombre_usuario}'") from None
    session.refresh(user)
    return user


def get_user(session: Session, user_id: int) -> Usuario:
    user = session.get(Usuario, user_id)
    if user is None:
        raise NoEncontrado(f"No existe el usuario {user_id}")
    return user


def get_user_by_name(session: Session, nombre_usuario: str) -> Usuario:
    user = session.scalar(select(Usuario).where(Usuario.nombre_usuario == nombre_usuario))
    if user is None:
        raise NoEncontrado(f"No existe el usuario '{nombre_usuario}'")
    return user


def list_users(session: Session, pagina: Pagina) -> dict[str, Any]:
    return page(session, select(Usuario).order_by(Usuario.id_usuario), pagina)


def _ensure_not_last_admin(session: Session, user: Usuario, changes: dict[str, object]) -> None:
    """Nadie deja al servicio sin un ADMIN activo: sin él, nadie puede usar la API de backups ni
    administrar usuarios."""
    leaves = changes.get("rol") not in (None, "ADMIN") or changes.get("activo") is False
    if not (leaves and user.rol == "ADMIN" and user.activo):
        return
    # FOR UPDATE sobre todos los ADMIN activos: dos que se degradan a la vez no quedan los dos fuera.
    admins = session.scalars(
        select(Usuario.id_usuario).where(Usuario.rol == "ADMIN", Usuario.activo.is_(True)).with_for_update()
    ).all()
    if set(admins) <= {user.id_usuario}:
        session.rollback()
        raise Conflicto(
            f"'{user.nombre_usuario}' es el único ADMIN activo: no se le puede quitar el rol ni desactivar. "
            "Cree o active antes otro ADMIN."
        )


def update_user(session: Session, user_id: int, data: UsuarioActualizar) -> Usuario:
    user = get_user(session, user_id)
    changes = data.model_dump(exclude_unset=True)
    _ensure_not_last_admin(session, user, changes)
    if "password" in changes:
        password = changes.pop("password")
        if password is not None:
            user.hash_password = hash_password(password)
            user.intentos_fallidos = 0
            user.bloqueado_hasta = None
    for key, value in changes.items():
        if value is not None:
            setattr(user, key, value)
    session.commit()
    session.refresh(user)
    return user


def login_failed_message(throttle: LoginThrottle) -> str:
    minutos = max(1, round(throttle.seconds / 60))
    return (
        "Usuario o contraseña incorrectos; tras "
        f"{cantidad(throttle.max_account, 'intento fallido seguido', 'intentos fallidos seguidos')}, "
        f"el acceso desde este equipo se pausa {minutos} min"
    )


def authenticate(
    session: Session, username: str, password: str, client: str, throttle: LoginThrottle
) -> Usuario:
    """Verifica credenciales.

    Usuario desconocido, contraseña equivocada, usuario inactivo y acceso en pausa dan la misma
    respuesta tras el mismo trabajo (una verificación argon2, contra un hash de relleno si no hay
    usuario): ni el mensaje ni el tiempo dicen qué cuentas existen. La pausa la decide `throttle`
    por cliente y por cuenta+cliente: nadie puede dejar fuera a otro desde su propia dirección.
    """
    now = session.scalar(select(func.now()))
    assert now is not None
    paused = throttle.blocked(username, client)
    user = session.scalar(select(Usuario).where(Usuario.nombre_usuario == username).with_for_update())
    # Un bloqueo puesto a mano en la base (bloqueado_hasta) se respeta igual.
    locked = user is not None and user.bloqueado_hasta is not None and user.bloqueado_hasta > now
    ok = verify_password(password, user.hash_password if user is not None else None)
    if paused or locked or user is None or not ok or not user.activo:
        if paused or locked:
            motivo = "pausa"
        elif user is not None and ok:
            motivo = "inactivo"
        else:
            motivo = "credenciales"
        if not paused:
            throttle.failure(username, client)
        if user is not None and not ok:
            user.intentos_fallidos += 1  # informativo (lo ve el ADMIN): ya no bloquea la cuenta
            session.commit()
        else:
            session.rollback()
        sesiones_log.warning("LOGIN FALLIDO usuario=%s cliente=%s motivo=%s", username, client, motivo)
        raise NoAutorizado(login_failed_message(throttle))
    throttle.success(username, client)
    user.intentos_fallidos = 0
    user.bloqueado_hasta = None
    user.ultimo_acceso = now
    session.commit()
    sesiones_log.info("LOGIN OK usuario=%s cliente=%s rol=%s", username, client, user.rol)
    return user


def ensure_first_admin(session: Session, password: str | None) -> str | None:
    """Sin usuarios, crea `admin`. Devuelve la contraseña generada (para mostrarla una vez) o None."""
    # Cerrojo para que dos instancias que arrancan juntas no creen dos administradores.
    session.execute(select(func.pg_advisory_xact_lock(7261002)))
    if session.scalar(select(func.count()).select_from(Usuario)):
        session.rollback()
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    session.add(
        Usuario(
            nombre_usuario="admin",
            nombre_completo="Administrador",
            hash_password=hash_password(password),
            rol="ADMIN",
        )
    )
    session.commit()
    log.info("Usuario inicial 'admin' creado")
    return generated


def unlock(session: Session, user_id: int) -> None:
    session.execute(
        update(Usuario).where(Usuario.id_usuario == user_id).values(intentos_fallidos=0, bloqueado_hasta=None)
    )
    session.commit()


__all__ = [
    "authenticate",
    "create_user",
    "ensure_first_admin",
    "get_user",
    "list_users",
    "unlock",
    "update_user",
]
