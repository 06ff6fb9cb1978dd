from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

TipoBackup = Literal["COMPLETO", "DIFERENCIAL"]
TipoSolicitado = Literal["COMPLETO", "DIFERENCIAL", "AUTO"]
FORMATO_MANIFIESTO = 1


class TablaManifiesto(BaseModel):
    nombre: str
    filas: int | None = None  # filas de la tabla en el instante del backup
    filas_escritas: int = 0  # filas incluidas en el archivo
    claves_eliminadas: int = 0  # solo diferencial: claves borradas o reemplazadas


class Manifiesto(BaseModel):
    """Lo que el directorio de backups sabe de cada archivo, aunque la base ya no exista."""

    formato: int = FORMATO_MANIFIESTO
    id_backup: int
    tipo: TipoBackup
    nombre_archivo: str
    hash_md5: str
    tamanio_bytes: int
    tamanio_sin_comprimir: int
    fecha_creacion: datetime
    fecha_instantanea: datetime
    fecha_corte: datetime
    duracion_segundos: float
    ejecutado_por: str | None
    revision_esquema: str | None
    huella_esquema: str
    version_servidor: str
    id_backup_base: int | None = None
    nombre_archivo_base: str | None = None
    hash_md5_base: str | None = None
    tablas: list[TablaManifiesto] = Field(default_factory=list)
    nota: str | None = None

    @property
    def registros_totales(self) -> int:
        return sum(t.filas_escritas + t.claves_eliminadas for t in self.tablas)
