from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

from inventario.modules.notificaciones.model import SEMAFOROS
from inventario.modules.productos.schemas import Entrada, IdRef, Texto
from inventario.pagination import Listado


def _semaforo_valido(value: object) -> object:
    if value not in SEMAFOROS:
        raise ValueError("debe ser VERDE, AMARILLO o ROJO")
    return value


Semaforo = Annotated[Literal["VERDE", "AMARILLO", "ROJO"], BeforeValidator(_semaforo_valido)]
# Tipos y referencias son etiquetas de máquina: MAYÚSCULAS_CON_GUIONES (p. ej. BACKUP, LOTE).
Etiqueta = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=30, pattern=r"^[A-Z][A-Z0-9_]*$"),
]


class NotificacionCrear(Entrada):
    tipo: Etiqueta = "MANUAL"
    titulo: Texto(200)  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    mensaje: Texto(5000, 0) = ""  # type: ignore[valid-type]  # Texto(): tipo anotado que se construye en tiempo de ejecución
    semaforo: Semaforo = "VERDE"
    referencia_tipo: Etiqueta | None = None
    referencia_id: IdRef | None = None


class NotificacionSalida(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id_notificacion: int
    tipo: str
    titulo: str
    mensaje: str
    semaforo: str
    leida: bool
    fecha_lectura: datetime | None
    referencia_tipo: str | None
    referencia_id: int | None
    fecha_creacion: datetime
    fecha_actualizacion: datetime


class ListadoNotificaciones(Listado[NotificacionSalida]):
    # Todas las no leídas, sin aplicar los filtros: es el contador de la campanita.
    no_leidas: int


class LecturaMasiva(BaseModel):
    marcadas: int
