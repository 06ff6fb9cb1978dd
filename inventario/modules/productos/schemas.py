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


# Caracteres de control (C0, DEL, C1) y separadores de línea Unicode. NUL daría un 500 en
# PostgreSQL; los demás romperían una línea de log (un salto de línea en un nombre de usuario
# falsificaría un "LOGIN OK" en sesiones.log) o se verían como basura. Un texto largo (descripción,
# mensaje, motivo) admite salto de línea, retorno y tabulador.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_MULTILINEA = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _sin_control(pattern: re.Pattern[str]) -> Any:
    def check(value: str) -> str:
        found = pattern.search(value)
        if found:
            raise ValueError(
                f"no puede contener caracteres de control (encontrado U+{ord(found.group()):04X})"
            )
        return value

    return AfterValidator(check)


def Texto(
    max_length: int, min_length: int = 1, *, recortar: bool = True, multilinea: bool | None = None
) -> Any:
    """Texto con largo acotado a la columna y sin caracteres de control.

    `recortar`: quita espacios al principio y al final (no en usuarios y contraseñas).
    `multilinea` (por defecto, los textos de 1000 caracteres o más): admite saltos de línea.
    """
    if multilinea is None:
        multilinea = max_length >= 1000
    return Annotated[
        str,
        StringConstraints(strip_whitespace=recortar, min_length=min_length, max_length=max_length),
        _sin_control(_CONTROL_MULTILINEA if multilinea else _CONTROL),
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
    codigo: Texto(50)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    nombre: Texto(200)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    descripcion: Texto(5000, 0) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    unidad: Texto(30) = "unidad"  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    stock_minimo: Entero = 0


class ProductoActualizar(Parche):
    NULLABLES: ClassVar[frozenset[str]] = frozenset({"descripcion"})
    codigo: Texto(50) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    nombre: Texto(200) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    descripcion: Texto(5000, 0) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    unidad: Texto(30) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
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
    # Sin los lotes vencidos (no se pueden vender): es lo que compara `bajo_minimo`.
    stock_disponible: int
    cantidad_lotes: int
    bajo_minimo: bool = Field(description="stock_disponible < stock_minimo (lo vencido no cuenta)")
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
