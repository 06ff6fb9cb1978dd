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
    claves_eliminadas: int = 0  # diferencial o incremental: claves borradas o reemplazadas
    # Claves de las filas escritas entre `fecha_corte_siguiente` y la instantánea (ventana de
    # transacciones abiertas). Con ellas el backup siguiente cuenta sus filas sin recorrer la tabla.
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
    # `registro_eliminaciones` visibles en la instantánea con fecha >= `fecha_corte_siguiente`.
    eliminaciones_recientes: list[int] = Field(default_factory=list)
    nota: str | None = None
    # ---- cadenas con incrementales ----
    # Desde cuándo lee el backup que se aplique sobre este (inicio de la transacción más antigua
    # abierta en la instantánea). En un completo es `fecha_corte`; None en archivos anteriores a
    # los incrementales (no pueden ser predecesores de uno).
    fecha_corte_siguiente: datetime | None = None
    # El completo de la cadena (el propio id en un completo).
    id_backup_completo: int | None = None
    # Secuencias y `pg_current_snapshot()` (siguiente xid, xid en curso) en la instantánea: con
    # ellos el incremental siguiente sabe si algo cambió sin escribir nada (ver dump.changes_since).
    secuencias: dict[str, tuple[int, bool]] | None = None
    xid_siguiente: int | None = None
    xids_en_curso: list[int] = Field(default_factory=list)

    def tabla(self, nombre: str) -> TablaManifiesto | None:
        return next((t for t in self.tablas if t.nombre == nombre), None)

    @property
    def registros_totales(self) -> int:
        return sum(t.filas_escritas + t.claves_eliminadas for t in self.tablas)
