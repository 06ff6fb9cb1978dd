from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from inventario.database import SessionDep
from inventario.modules.usuarios import service
from inventario.modules.usuarios.dependencies import AdminUser, CurrentUser
from inventario.modules.usuarios.schemas import (
    LoginEntrada,
    TokenSalida,
    UsuarioActualizar,
    UsuarioCrear,
    UsuarioSalida,
)
from inventario.modules.usuarios.throttle import LoginThrottle
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import Id, Listado, PaginaDep
from inventario.security import create_token

auth_router = APIRouter(prefix="/api/v1/auth", tags=["autenticación"])
router = APIRouter(prefix="/api/v1/usuarios", tags=["usuarios"], responses={**CON_TOKEN, **errores(403)})


_FORMULARIOS = ("application/x-www-form-urlencoded", "multipart/form-data")
_ESQUEMA_FORMULARIO = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 100, "description": "nombre_usuario"},
        "password": {"type": "string", "minLength": 1, "maxLength": 256, "format": "password"},
        "grant_type": {"type": "string", "enum": ["password"]},
        "scope": {"type": "string"},
    },
}


async def login_entrada(request: Request) -> LoginEntrada:
    """El JSON `{"nombre_usuario", "password"}` de siempre, o el formulario OAuth2 (`username`,
    `password`) que envía el botón "Authorize" de /docs."""
    tipo = request.headers.get("content-type", "").split(";")[0].strip().lower()
    datos: Any
    if tipo in _FORMULARIOS:
        form = await request.form()
        datos = {
            "nombre_usuario": form.get("username", form.get("nombre_usuario")),
            "password": form.get("password"),
        }
    else:
        try:
            datos = await request.json()
        except (ValueError, RecursionError):  # RecursionError: JSON anidado a miles de niveles
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": ""}]) from None
    try:
        return LoginEntrada.model_validate(datos)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def login_throttle(request: Request) -> LoginThrottle:
    """Uno por aplicación (en app.state), creado con la configuración al primer login."""
    state = request.app.state
    if getattr(state, "login_throttle", None) is None:
        settings = state.settings
        state.login_throttle = LoginThrottle(
            settings.LOGIN_MAX_INTENTOS,
            settings.LOGIN_MAX_INTENTOS_CLIENTE,
            settings.LOGIN_BLOQUEO_MINUTOS * 60,
        )
    throttle: LoginThrottle = state.login_throttle
    return throttle


@auth_router.post(
    "/login",
    response_model=TokenSalida,
    summary="Iniciar sesión",
    description="Devuelve el token para `Authorization: Bearer ...`. Acepta JSON "
    "(`nombre_usuario`, `password`) o el formulario OAuth2 (`username`, `password`) del botón Authorize.",
    responses=errores(
        401,
        422,
        503,
        e401="Usuario o contraseña incorrectos, usuario inactivo o acceso en pausa tras intentos fallidos (misma respuesta)",
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LoginEntrada.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": _ESQUEMA_FORMULARIO},
            },
        }
    },
)
def login(
    data: Annotated[LoginEntrada, Depends(login_entrada)], request: Request, session: SessionDep
) -> TokenSalida:
    settings = request.app.state.settings
    client = request.client.host if request.client else "desconocido"
    user = service.authenticate(session, data.nombre_usuario, data.password, client, login_throttle(request))
    token = create_token(request.app.state.secret_key, user.id_usuario, user.rol, settings.TOKEN_MINUTOS)
    return TokenSalida(access_token=token, expira_en_segundos=settings.TOKEN_MINUTOS * 60, rol=user.rol)


@auth_router.get("/yo", response_model=UsuarioSalida, summary="El usuario del token", responses=CON_TOKEN)
def me(user: CurrentUser) -> object:
    """Quién es el usuario del token: nombre, rol y estado."""
    return user


@router.get("", response_model=Listado[UsuarioSalida], summary="Listar usuarios", responses=errores(422))
def list_users(session: SessionDep, _: AdminUser, pagina: PaginaDep) -> dict:
    """Usuarios paginados, con rol, estado y bloqueo. Solo ADMIN."""
    return service.list_users(session, pagina)


@router.post(
    "",
    response_model=UsuarioSalida,
    status_code=201,
    summary="Crear un usuario",
    responses=errores(409, 422, e409="Ya existe un usuario con ese nombre"),
)
def create_user(data: UsuarioCrear, session: SessionDep, _: AdminUser) -> object:
    """Crea un usuario ADMIN u OPERADOR con su contraseña. Solo ADMIN."""
    return service.create_user(session, data)


@router.get(
    "/{id_usuario}",
    response_model=UsuarioSalida,
    summary="Ver un usuario",
    responses=errores(404, 422, e404="No existe el usuario"),
)
def get_user(id_usuario: Id, session: SessionDep, _: AdminUser) -> object:
    """Un usuario por su id. Solo ADMIN."""
    return service.get_user(session, id_usuario)


@router.patch(
    "/{id_usuario}",
    response_model=UsuarioSalida,
    summary="Modificar un usuario",
    responses=errores(
        404,
        409,
        422,
        e404="No existe el usuario",
        e409="Quitaría el rol o desactivaría al único ADMIN activo",
    ),
)
def update_user(id_usuario: Id, data: UsuarioActualizar, session: SessionDep, _: AdminUser) -> object:
    """Cambia nombre completo, correo, contraseña, rol o actividad. Solo ADMIN."""
    return service.update_user(session, id_usuario, data)
