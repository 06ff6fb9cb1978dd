from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from inventario.modules.movimientos.model import TIPOS_MOVIMIENTO
from inventario.modules.productos.schemas import MAX_INT, Entrada, IdRef, Texto


def _tipo_valido(value: object) -> object:
    # Mensaje en español antes de que el Literal responda en inglés ("... or ...").
    if value not in TIPOS_MOVIMIENTO:
        raise ValueError("debe ser ENTRADA, SALIDA o AJUSTE")
    return value


TipoMovimiento = Annotated[Literal["ENTRADA", "SALIDA", "AJUSTE"], BeforeValidator(_tipo_valido)]


class MovimientoCrear(Entrada):
    tipo: TipoMovimiento
    id_producto: IdRef
    # Obligatorio en ENTRADA y AJUSTE; en una SALIDA sin lote se toma por FEFO.
    id_lote: IdRef | None = None
    # ENTRADA y SALIDA: > 0. AJUSTE: diferencia con signo, distinta de 0.
    cantidad: Annotated[int, Field(strict=True, ge=-MAX_INT, le=MAX_INT)]
    # Obligatorio en un AJUSTE.
    motivo: Texto(1000, 0) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución


class MovimientoSalida(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id_movimiento: int
    tipo: str
    id_producto: int
    id_lote: int
    # Con signo: lo que sumó (+) o restó (-) al lote.
    cantidad: int
    motivo: str | None
    id_usuario: int
    fecha_creacion: datetime
    fecha_actualizacion: datetime


class CantidadLote(BaseModel):
    id_lote: int
    cantidad: int


class ResultadoMovimiento(BaseModel):
    movimientos: list[MovimientoSalida]
    # Estado después del movimiento: los lotes tocados y el stock total del producto.
    lotes: list[CantidadLote]
    stock_total: int
