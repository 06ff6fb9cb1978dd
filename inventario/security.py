"""Contraseñas (argon2) y tokens de acceso (JWT HS256)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Hash de referencia para igualar el tiempo de respuesta cuando el usuario no existe.
_DUMMY_HASH = _hasher.hash("contraseña-que-nadie-usa")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    try:
        return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def create_token(secret: str, user_id: int, role: str, minutes: int) -> str:
    now = datetime.now(UTC)
    payload = {"sub": str(user_id), "rol": role, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> dict[str, object] | None:
    # Cualquier token mal formado es un 401, nunca un 500: PyJWT puede dejar escapar errores de
    # decodificación que no son PyJWTError con entradas raras.
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except (jwt.PyJWTError, ValueError, TypeError, UnicodeError):
        return None
    return payload if isinstance(payload, dict) else None
