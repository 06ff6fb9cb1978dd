"""Lo que un job le devuelve al planificador (sin dependencias: lo importan los envoltorios de `jobs/`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inventario.runtime import Runtime


@dataclass(frozen=True)
class ContextoJob:
    runtime: Runtime
    programada_para: datetime  # hora programada que cubre la corrida (manual: el instante pedido)
    manual: bool
    ejecutado_por: str


@dataclass(frozen=True)
class ResultadoJob:
    estado: str  # EstadoEjecucion.OK u OMITIDO (un fallo se señala con una excepción)
    mensaje: str


class JobFallido(Exception):
    """Fallo con mensaje para el operador. `notificado`: el servicio de abajo ya creó la
    notificación (p. ej. el motor de backups con su "❌ Error en Backup"), no se repite."""

    def __init__(self, mensaje: str, *, notificado: bool = False) -> None:
        super().__init__(mensaje)
        self.mensaje = mensaje
        self.notificado = notificado


__all__ = ["ContextoJob", "JobFallido", "ResultadoJob"]
