from __future__ import annotations

from fastapi import APIRouter, Request

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
from inventario.pagination import Id, Listado, PaginaDep
from inventario.security import create_token

auth_router = APIRouter(prefix="/api/v1/auth", tags=["autenticación"])
router = APIRouter(prefix="/api/v1/usuarios", tags=["usuarios"])


@auth_router.post("/login", response_model=TokenSalida)
def login(data: LoginEntrada, request: Request, session: SessionDep) -> TokenSalida:
    settings = request.app.state.settings
    client = request.client.host if request.client else "desconocido"
    user = service.authenticate(
        session,
        data.nombre_usuario,
        data.password,
        client,
        max_attempts=settings.LOGIN_MAX_INTENTOS,
        lock_minutes=settings.LOGIN_BLOQUEO_MINUTOS,
    )
    token = create_token(request.app.state.secret_key, user.id_usuario, user.rol, settings.TOKEN_MINUTOS)
    return TokenSalida(access_token=token, expira_en_segundos=settings.TOKEN_MINUTOS * 60, rol=user.rol)  # type: ignore[arg-type]


@auth_router.get("/yo", response_model=UsuarioSalida)
def me(user: CurrentUser) -> object:
    return user


@router.get("", response_model=Listado[UsuarioSalida])
def list_users(session: SessionDep, _: AdminUser, pagina: PaginaDep) -> dict:
    items, total = service.list_users(session, pagina.offset, pagina.limit)
    return {"total": total, "offset": pagina.offset, "limit": pagina.limit, "items": items}


@router.post("", response_model=UsuarioSalida, status_code=201)
def create_user(data: UsuarioCrear, session: SessionDep, _: AdminUser) -> object:
    return service.create_user(session, data)


@router.get("/{id_usuario}", response_model=UsuarioSalida)
def get_user(id_usuario: Id, session: SessionDep, _: AdminUser) -> object:
    return service.get_user(session, id_usuario)


@router.patch("/{id_usuario}", response_model=UsuarioSalida)
def update_user(id_usuario: Id, data: UsuarioActualizar, session: SessionDep, _: AdminUser) -> object:
    return service.update_user(session, id_usuario, data)
