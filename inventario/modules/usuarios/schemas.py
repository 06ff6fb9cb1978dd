from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from inventario.modules.productos.schemas import Texto

Rol = Literal["ADMIN", "OPERADOR"]


class LoginEntrada(BaseModel):
    nombre_usuario: Texto(100, recortar=False)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    password: Texto(256, recortar=False)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución


class TokenSalida(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expira_en_segundos: int
    rol: Rol


class UsuarioCrear(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nombre_usuario: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    nombre_completo: Texto(200, 0) = ""  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    email: EmailStr | None = None
    password: Texto(256, 8, recortar=False)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    rol: Rol = "OPERADOR"


class UsuarioActualizar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nombre_completo: Texto(200, 0) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    email: EmailStr | None = None
    password: Texto(256, 8, recortar=False) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    rol: Rol | None = None
    activo: bool | None = None


class UsuarioSalida(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id_usuario: int
    nombre_usuario: str
    nombre_completo: str
    email: str | None
    rol: Rol
    activo: bool
    bloqueado_hasta: datetime | None
    ultimo_acceso: datetime | None
    fecha_creacion: datetime
    fecha_actualizacion: datetime
