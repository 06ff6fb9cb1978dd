from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, model_validator

from inventario.modules.productos.schemas import Entero, Entrada, Fecha, IdRef, Parche, Texto


class LoteCrear(Entrada):
    id_producto: IdRef
    codigo_lote: Texto(60)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    fecha_vencimiento: Fecha | None = None
    # Se registra como movimiento ENTRADA del mismo alta (si es mayor que 0).
    cantidad: Entero = 0


class LoteActualizar(Parche):
    NULLABLES: ClassVar[frozenset[str]] = frozenset({"fecha_vencimiento"})
    codigo_lote: Texto(60) | None = None  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    fecha_vencimiento: Fecha | None = None

    @model_validator(mode="before")
    @classmethod
    def _cantidad_por_movimientos(cls, data: Any) -> Any:
        # Mensaje más útil que "no es un campo permitido": dice cómo hacerlo.
        if isinstance(data, dict) and "cantidad" in data:
            raise ValueError(
                "la cantidad de un lote solo cambia mediante movimientos (POST /api/v1/movimientos)"
            )
        return data


class LoteSalida(BaseModel):
    id_lote: int
    id_producto: int
    codigo_lote: str
    fecha_vencimiento: date | None
    cantidad: int
    vencido: bool
    fecha_creacion: datetime
    fecha_actualizacion: datetime
