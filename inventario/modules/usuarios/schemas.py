from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Rol = Literal["ADMIN", "OPERADOR"]


class LoginEntrada(BaseModel):
    nombre_usuario: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)


class TokenSalida(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expira_en_segundos: int
    rol: Rol


class UsuarioCrear(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nombre_usuario: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    nombre_completo: str = Field("", max_length=200)
    email: EmailStr | None = None
    password: str = Field(min_length=8, max_length=256)
    rol: Rol = "OPERADOR"


class UsuarioActualizar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nombre_completo: str | None = Field(None, max_length=200)
    email: EmailStr | None = None
    password: str | None = Field(None, min_length=8, max_length=256)
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
