"""Dependencias de autenticación: `CurrentUser` (cualquier rol) y `AdminUser`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from inventario.errors import NoAutorizado, Prohibido
from inventario.modules.usuarios.model import Usuario
from inventario.pagination import MAX_BIGINT
from inventario.security import decode_token

# OAuth2 "password": el botón Authorize de /docs pide usuario y contraseña y llama al login.
_bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/login",
    auto_error=False,
    description="Usuario y contraseña en Authorize, o el token de /api/v1/auth/login",
)


def current_user(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
) -> Usuario:
    if not token:
        raise NoAutorizado("Falta el token de acceso (cabecera Authorization: Bearer ...)")
    return user_from_token(request, token)


def user_from_token(request: Request, token: str) -> Usuario:
    """El usuario activo de un token (API: cabecera Bearer; consola: cookie de sesión)."""
    payload = decode_token(request.app.state.secret_key, token)
    if payload is None:
        raise NoAutorizado("Token inválido o vencido")
    # Un `sub` que no es un id posible (texto, negativo, más allá de bigint) es un token inválido,
    # no una consulta que la base rechazaría con un 500.
    sub = payload.get("sub")
    if not isinstance(sub, str) or not (sub.isascii() and sub.isdigit()) or not 1 <= int(sub) <= MAX_BIGINT:
        raise NoAutorizado("Token inválido o vencido")
    # Sesión propia y breve: la del endpoint (si la pide) es suya, y un endpoint largo (un backup,
    # una descarga) no retiene una conexión ni una transacción abierta por haber autenticado. Una
    # sola lectura no necesita transacción: en AUTOCOMMIT la base recibe solo el SELECT, sin BEGIN
    # ni ROLLBACK (2 idas y vueltas menos en cada petición con token; docs/benchmarks.md, "Ronda 2m").
    with request.app.state.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with Session(conn) as session:
            user = session.get(Usuario, int(sub))
    if user is None or not user.activo:
        raise NoAutorizado("El usuario del token ya no está activo")
    return user


CurrentUser = Annotated[Usuario, Depends(current_user)]


def admin_user(user: CurrentUser) -> Usuario:
    if user.rol != "ADMIN":
        raise Prohibido("Se requiere el rol ADMIN")
    return user


AdminUser = Annotated[Usuario, Depends(admin_user)]
