"""Sesión de la consola en una cookie y protección CSRF. Sin lógica de negocio.

- La cookie `consola_sesion` lleva el mismo token firmado que entrega `POST /api/v1/auth/login`
  (vence a los `TOKEN_MINUTOS`): HttpOnly, SameSite=Strict, `Secure` si se sirve por HTTPS.
- CSRF: cada formulario lleva `csrf` = HMAC(SECRET_KEY, ancla), donde el ancla es la cookie de
  sesión o, antes de entrar, la cookie `consola_previa` (un número al azar). Otro sitio no puede
  leer ni fijar esas cookies, así que no puede fabricar el campo.
- Avisos tras un POST (patrón POST → 303 → GET): la cookie `consola_aviso`, firmada, vive 60 s y
  se borra al mostrarse.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from inventario.errors import NoAutorizado, Prohibido
from inventario.modules.usuarios.dependencies import user_from_token
from inventario.modules.usuarios.model import Usuario

RAIZ = "/consola"
COOKIE_SESION = "consola_sesion"
COOKIE_PREVIA = "consola_previa"
COOKIE_AVISO = "consola_aviso"
AVISO_SEGUNDOS = 60

TipoAviso = Literal["ok", "error"]


class SinSesion(Exception):
    """No hay sesión válida: la vista redirige a la página de entrada."""

    def __init__(self, motivo: str | None = None) -> None:
        super().__init__(motivo or "")
        self.motivo = motivo


def _secret(request: Request) -> str:
    return str(request.app.state.secret_key)


def _segura(request: Request) -> bool:
    return request.url.scheme == "https"


def poner_cookie(request: Request, response: Response, nombre: str, valor: str, segundos: int | None) -> None:
    response.set_cookie(
        nombre,
        valor,
        max_age=segundos,
        path=RAIZ,
        httponly=True,
        samesite="strict",
        secure=_segura(request),
    )


def borrar_cookie(request: Request, response: Response, nombre: str) -> None:
    response.delete_cookie(nombre, path=RAIZ, httponly=True, samesite="strict", secure=_segura(request))


# ------------------------------------------------------------------ CSRF


def _ancla(request: Request) -> str | None:
    return request.cookies.get(COOKIE_SESION) or request.cookies.get(COOKIE_PREVIA)


def csrf_de(secret: str, ancla: str) -> str:
    return hmac.new(secret.encode(), b"csrf|" + ancla.encode(), hashlib.sha256).hexdigest()


def asegurar_ancla(request: Request) -> str:
    """El ancla CSRF de esta petición; sin ninguna, crea una previa (se fija con `fijar_previa`)."""
    ancla = _ancla(request)
    if ancla is None:
        ancla = secrets.token_urlsafe(24)
        request.state.nueva_previa = ancla
    return ancla


def fijar_previa(request: Request, response: Response) -> None:
    nueva = getattr(request.state, "nueva_previa", None)
    if nueva is not None:
        poner_cookie(request, response, COOKIE_PREVIA, nueva, None)


def token_csrf(request: Request) -> str:
    return csrf_de(_secret(request), asegurar_ancla(request))


def verificar_csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Dependencia de todo POST de la consola: rechaza (403) un formulario sin su token."""
    ancla = _ancla(request)
    if not csrf or ancla is None or not hmac.compare_digest(csrf, csrf_de(_secret(request), ancla)):
        raise Prohibido(
            "El formulario no trae un token de seguridad válido (CSRF). Recargue la página e inténtelo de nuevo"
        )


CsrfDep = Depends(verificar_csrf)


# ------------------------------------------------------------------ sesión


def abrir_sesion(request: Request, response: Response, token: str, minutos: int) -> None:
    poner_cookie(request, response, COOKIE_SESION, token, minutos * 60)
    borrar_cookie(request, response, COOKIE_PREVIA)


def cerrar_sesion(request: Request, response: Response) -> None:
    borrar_cookie(request, response, COOKIE_SESION)


def usuario_consola(request: Request) -> Usuario:
    token = request.cookies.get(COOKIE_SESION)
    if not token:
        raise SinSesion()
    try:
        user = user_from_token(request, token)
    except NoAutorizado:
        raise SinSesion("Su sesión venció o ya no es válida: entre de nuevo") from None
    request.state.usuario = user
    return user


UsuarioConsola = Annotated[Usuario, Depends(usuario_consola)]


def admin_consola(user: UsuarioConsola) -> Usuario:
    if user.rol != "ADMIN":
        raise Prohibido("Esta página es solo para administradores (rol ADMIN)")
    return user


AdminConsola = Annotated[Usuario, Depends(admin_consola)]


# ------------------------------------------------------------------ avisos


def redirigir(
    request: Request, url: str, aviso: str | None = None, tipo: TipoAviso = "ok"
) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if aviso:
        exp = datetime.now(UTC) + timedelta(seconds=AVISO_SEGUNDOS)
        valor = jwt.encode({"m": aviso, "t": tipo, "exp": exp}, _secret(request), algorithm="HS256")
        poner_cookie(request, response, COOKIE_AVISO, valor, AVISO_SEGUNDOS)
    return response


def leer_aviso(request: Request) -> dict[str, str] | None:
    valor = request.cookies.get(COOKIE_AVISO)
    if not valor:
        return None
    try:
        datos = jwt.decode(valor, _secret(request), algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return {"mensaje": str(datos.get("m", "")), "tipo": "error" if datos.get("t") == "error" else "ok"}
