from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from inventario.pagination import MAX_BIGINT

# ---- Tipos comunes de entrada (también los usan lotes, movimientos y notificaciones) ----

MAX_INT = 2**31 - 1
"""Tope de las columnas `Integer`: más allá PostgreSQL daría un error en vez de un 422."""


def _sin_nul(value: str) -> str:
    # PostgreSQL no admite el carácter NUL en texto: sin esto sería un 500.
    if "\x00" in value:
        raise ValueError("no puede contener el carácter nulo (\\u0000)")
    return value


def Texto(max_length: int, min_length: int = 1) -> Any:
    """Texto recortado, con largo acotado a la columna y sin NUL."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_sin_nul),
    ]


def _fecha_iso(value: object) -> object:
    # Solo AAAA-MM-DD: pydantic aceptaría también números como marcas de tiempo Unix
    # (20240101 -> 1970-08-23) y fechas con hora.
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("debe ser una fecha AAAA-MM-DD")


def _solo_booleano(value: object) -> object:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError("debe ser true o false")


Fecha = Annotated[date, BeforeValidator(_fecha_iso)]
Booleano = Annotated[bool, BeforeValidator(_solo_booleano)]
# strict: rechaza true, "5" y 5.0 en vez de convertirlos en silencio.
Entero = Annotated[int, Field(strict=True, ge=0, le=MAX_INT)]
IdRef = Annotated[int, Field(strict=True, ge=1, le=MAX_BIGINT)]


class Entrada(BaseModel):
    """Base de los cuerpos de entrada: campos desconocidos son un 422."""

    model_config = ConfigDict(extra="forbid")


class Parche(Entrada):
    """Base de los PATCH: solo `NULLABLES` admiten null; omitir un campo es no cambiarlo."""

    NULLABLES: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _sin_nulos(self) -> Parche:
        nulos = sorted(
            k for k in self.model_fields_set if getattr(self, k) is None and k not in self.NULLABLES
        )
        if nulos:
            raise ValueError(f"{', '.join(nulos)} no puede ser null")
        return self

    def cambios(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# ---- Productos ----


class ProductoCrear(Entrada):
    codigo: Texto(50)  # type: ignore[valid-type]
    nombre: Texto(200)  # type: ignore[valid-type]
    descripcion: Texto(5000, 0) | None = None  # type: ignore[valid-type]
    unidad: Texto(30) = "unidad"  # type: ignore[valid-type]
    stock_minimo: Entero = 0


class ProductoActualizar(Parche):
    NULLABLES: ClassVar[frozenset[str]] = frozenset({"descripcion"})
    codigo: Texto(50) | None = None  # type: ignore[valid-type]
    nombre: Texto(200) | None = None  # type: ignore[valid-type]
    descripcion: Texto(5000, 0) | None = None  # type: ignore[valid-type]
    unidad: Texto(30) | None = None  # type: ignore[valid-type]
    stock_minimo: Entero | None = None
    # Reactivar o desactivar por aquí exige ADMIN (lo comprueba el router).
    activo: Booleano | None = None


class ProductoSalida(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id_producto: int
    codigo: str
    nombre: str
    descripcion: str | None
    unidad: str
    stock_minimo: int
    activo: bool
    stock_total: int
    cantidad_lotes: int
    bajo_minimo: bool
    fecha_creacion: datetime
    fecha_actualizacion: datetime


class StockLote(BaseModel):
    id_lote: int
    codigo_lote: str
    fecha_vencimiento: date | None
    cantidad: int
    vencido: bool


class StockProducto(BaseModel):
    id_producto: int
    codigo: str
    nombre: str
    unidad: str
    stock_minimo: int
    stock_total: int
    # Lo que una SALIDA sin lote puede tomar: excluye los lotes vencidos.
    stock_disponible: int
    stock_vencido: int
    bajo_minimo: bool
    lotes: list[StockLote]
