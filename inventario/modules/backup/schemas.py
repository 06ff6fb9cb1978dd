"""Entradas y salidas de `/api/v1/backup`. El manifiesto de los archivos está en `manifest.py`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AliasChoices, AliasPath, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from inventario.modules.backup.model import EstadoBackup, TipoBackup, TipoSolicitado
from inventario.modules.productos.schemas import Entrada, IdRef

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def _mayusculas(value: object) -> object:
    """`completo` y ` Completo ` también valen: curl a mano no debería dar un 422 por eso."""
    return value.strip().upper() if isinstance(value, str) else value


TipoEntrada = Annotated[TipoSolicitado, BeforeValidator(_mayusculas)]
TipoFiltro = Annotated[TipoBackup, BeforeValidator(_mayusculas)]
EstadoFiltro = Annotated[EstadoBackup, BeforeValidator(_mayusculas)]


def _email_destino(value: object) -> str:
    """Una sola dirección, validada con email-validator; sin saltos de línea (nada de cabeceras
    inyectadas) ni nombres `Nombre <dir>`: lo que llega es lo que se usa como destinatario."""
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(value, str):
        raise ValueError("debe ser texto")
    if _CONTROL.search(value):
        raise ValueError("no puede contener saltos de línea ni caracteres de control")
    value = value.strip()
    if not value:
        raise ValueError("es obligatorio")
    if len(value) > 254:
        raise ValueError("es demasiado largo (máximo 254 caracteres)")
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError(f"no es una dirección de email válida: {value!r}") from None
    return info.normalized


EmailDestino = Annotated[
    str,
    BeforeValidator(_email_destino),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]


class EjecutarBackup(Entrada):
    """Cuerpo opcional de `POST /ejecutar` (el tipo también puede ir en la query)."""

    tipo: TipoEntrada | None = None


class EnviarEmail(Entrada):
    """Cuerpo de `POST /{id}/enviar-email`, como en el plan: `{"id_backup": 1, "email_destino": ...}`."""

    # Opcional: si viene, debe coincidir con el id de la ruta (si no, 422).
    id_backup: IdRef | None = None
    email_destino: EmailDestino


def _remoto(campo: str, columna: str) -> AliasChoices:
    # Desde la fila ORM: `copia_remota.<columna>` (relación definida en modules/remoto/model.py);
    # desde un dict ya volcado: el nombre del campo.
    return AliasChoices(campo, AliasPath("copia_remota", columna))


class BackupSalida(BaseModel):
    """Una fila de `historial_backup` (las columnas del plan y las que añadió el motor)."""

    model_config = ConfigDict(from_attributes=True)
    id_backup: int
    tipo: str
    nombre_archivo: str
    ruta_archivo: str
    tamanio_bytes: int | None
    tamanio_legible: str | None
    estado: str | None
    mensaje_error: str | None
    duracion_segundos: float | None
    tablas_respaldadas: int | None
    registros_totales: int | None
    hash_md5: str | None
    id_backup_base: int | None
    fecha_creacion: datetime | None
    fecha_eliminacion: datetime | None
    eliminado: bool | None
    ejecutado_por: str | None
    fecha_actualizacion: datetime | None
    fecha_instantanea: datetime | None
    fecha_corte: datetime | None
    revision_esquema: str | None
    nota: str | None
    # ---- copia fuera del sitio (tabla copia_remota); null: nunca se intentó o BACKUP_REMOTO vacío ----
    remoto_estado: str | None = Field(
        None, validation_alias=_remoto("remoto_estado", "estado")
    )  # PENDIENTE/COPIADO/ERROR
    remoto_fecha: datetime | None = Field(
        None, validation_alias=_remoto("remoto_fecha", "fecha_estado")
    )  # de ese estado
    remoto_fecha_copia: datetime | None = Field(
        None, validation_alias=_remoto("remoto_fecha_copia", "fecha_copia")
    )
    remoto_objeto: str | None = Field(
        None, validation_alias=_remoto("remoto_objeto", "objeto")
    )  # nombre en el remoto
    remoto_hash: str | None = Field(
        None, validation_alias=_remoto("remoto_hash", "hash_remoto")
    )  # MD5 de lo subido
    remoto_error: str | None = Field(None, validation_alias=_remoto("remoto_error", "mensaje_error"))
    remoto_intentos: int | None = Field(None, validation_alias=_remoto("remoto_intentos", "intentos"))
    remoto_eliminado: bool | None = Field(
        None, validation_alias=_remoto("remoto_eliminado", "eliminado_remoto")
    )


class BackupDetalle(BackupSalida):
    # Diferencial: el completo sobre el que se aplica (hay que restaurarlo antes).
    base: BackupSalida | None = None
    # Completo: los diferenciales vigentes (no eliminados) que dependen de él.
    diferenciales: list[int] = Field(default_factory=list)
    # El archivo está en BACKUP_PATH con el tamaño del catálogo (no recalcula el MD5).
    archivo_disponible: bool = False


class BackupFallido(BackupDetalle):
    """Respuesta de un backup que terminó en ERROR (503, o 507 si el disco se llenó)."""

    detalle: str


class ResumenBackup(BaseModel):
    id_backup: int
    tipo: str
    estado: str | None
    fecha: datetime | None


class UltimoError(BaseModel):
    id_backup: int
    tipo: str
    fecha: datetime | None
    mensaje: str | None


class FueraDelSitio(BaseModel):
    """Las copias fuera del sitio: destino sin credenciales (nombre de remoto y ruta)."""

    configurado: bool
    destino: str | None = None
    cifrado: bool | None = None
    dias_retencion: int | None = None
    ultima_copia: datetime | None = None
    id_ultima_copia: int | None = None
    copiados: int | None = None
    pendientes: int | None = None
    errores: int | None = None


class EstadisticasBackup(BaseModel):
    # ---- los campos del plan (solo backups COMPLETADO y no eliminados) ----
    total_backups: int
    backups_completos: int
    backups_diferenciales: int
    espacio_usado_bytes: int
    espacio_usado_legible: str
    ultimo_backup_completo: datetime | None
    ultimo_backup_diferencial: datetime | None
    dias_retencion: int
    # ---- añadidos ----
    backups_incrementales: int
    ultimo_backup_incremental: datetime | None
    backups_habilitados: bool  # BACKUP_ENABLED: el job programado hace backups
    ultimo_backup: ResumenBackup | None  # el más reciente, en cualquier estado
    ultimo_backup_estado: str | None
    ultimo_error: UltimoError | None
    backups_con_error: int
    backups_eliminados: int
    backup_en_curso: int | None  # id del backup EN_PROCESO, si hay uno
    espacio_libre_bytes: int | None  # en el disco de BACKUP_PATH
    espacio_libre_legible: str | None
    proxima_ejecucion: datetime | None  # del job `backup_diario`, si el planificador corre
    fuera_del_sitio: FueraDelSitio = Field(default_factory=lambda: FueraDelSitio(configurado=False))


class BackupEliminado(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id_backup: int
    tipo: str
    nombre_archivo: str
    tamanio_bytes: int | None
    fecha_creacion: datetime | None


class LimpiezaBackups(BaseModel):
    dias_retencion: int
    ids_eliminados: list[int]
    eliminados: list[BackupEliminado]
    bytes_liberados: int
    bytes_liberados_legible: str
    # Viejos que se conservan porque un diferencial vigente los necesita para restaurarse.
    conservados_por_dependencia: list[int]
    # Restos de backups interrumpidos (`.parcial`, manifiestos sin archivo).
    temporales_borrados: list[str]


class EnvioEmail(BaseModel):
    enviado: bool
    id_backup: int
    nombre_archivo: str
    email_destino: str
    tamanio_bytes: int
    hash_md5: str
    servidor_smtp: str
    fecha_envio: datetime


class ArchivoPunto(BaseModel):
    """Un archivo de la cadena de un punto de restauración, en el orden en que se aplica."""

    id_backup: int
    tipo: TipoBackup
    nombre_archivo: str
    hash_md5: str
    tamanio_bytes: int


class PuntoRestauracionSalida(BaseModel):
    """Un momento al que se puede volver: el estado de la base en la instantánea de un backup."""

    id_backup: int
    tipo: TipoBackup
    nombre_archivo: str
    fecha_instantanea: datetime  # el estado de la base que se recupera
    fecha_creacion: datetime
    archivos: list[ArchivoPunto]  # completo, diferencial (si hay) e incrementales, en orden
    tamanio_total_bytes: int
    tamanio_total_legible: str
