"""El manifiesto `ARCHIVO.manifest.json` que acompaña a cada archivo de backup.

Lo que el directorio de backups sabe de cada archivo, aunque la base (y con ella el catálogo
`historial_backup`) haya desaparecido. Es un formato en disco: sus campos no se renombran.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from inventario.modules.backup.model import TipoBackup

FORMATO_MANIFIESTO = 1


class TablaManifiesto(BaseModel):
    nombre: str
    filas: int | None = None  # filas de la tabla en el instante del backup
    filas_escritas: int = 0  # filas incluidas en el archivo
    claves_eliminadas: int = 0  # solo diferencial: claves borradas o reemplazadas
    # Solo completo: claves de las filas escritas entre el corte y la instantánea (ventana de
    # transacciones abiertas). Con ellas el diferencial cuenta sus filas sin recorrer la tabla.
    claves_recientes: list[dict[str, Any]] | None = None


class Manifiesto(BaseModel):
    """Un archivo de backup: qué contiene, su MD5 y, si no es un completo, de qué archivo depende."""

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
    # Solo completo: `registro_eliminaciones` visibles en la instantánea con fecha >= corte.
    eliminaciones_recientes: list[int] = Field(default_factory=list)
    nota: str | None = None

    def tabla(self, nombre: str) -> TablaManifiesto | None:
        return next((t for t in self.tablas if t.nombre == nombre), None)

    @property
    def registros_totales(self) -> int:
        return sum(t.filas_escritas + t.claves_eliminadas for t in self.tablas)
