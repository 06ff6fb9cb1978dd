from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base


class TipoBackup(StrEnum):
    """Los tipos de archivo de backup (columna `tipo`). Una cadena de restauración empieza en un
    COMPLETO; cada eslabón posterior nombra su base en el manifiesto."""

    COMPLETO = "COMPLETO"
    DIFERENCIAL = "DIFERENCIAL"
    INCREMENTAL = "INCREMENTAL"


class TipoSolicitado(StrEnum):
    """Lo que se puede pedir: un tipo, o AUTO (el del día, como el job `backup_diario`)."""

    COMPLETO = "COMPLETO"
    DIFERENCIAL = "DIFERENCIAL"
    INCREMENTAL = "INCREMENTAL"
    AUTO = "AUTO"


class EstadoBackup(StrEnum):
    EN_PROCESO = "EN_PROCESO"
    COMPLETADO = "COMPLETADO"
    ERROR = "ERROR"


class HistorialBackup(Base):
    """La tabla `historial_backup` del plan, más las columnas que el diferencial necesita."""

    __tablename__ = "historial_backup"

    id_backup: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tipo: Mapped[str] = mapped_column(String(20))
    nombre_archivo: Mapped[str] = mapped_column(String(255))
    ruta_archivo: Mapped[str] = mapped_column(Text)
    tamanio_bytes: Mapped[int | None] = mapped_column(BigInteger)
    tamanio_legible: Mapped[str | None] = mapped_column(String(50))
    estado: Mapped[str | None] = mapped_column(String(20), server_default=EstadoBackup.COMPLETADO.value)
    mensaje_error: Mapped[str | None] = mapped_column(Text)
    duracion_segundos: Mapped[float | None] = mapped_column(Float)
    tablas_respaldadas: Mapped[int | None] = mapped_column(BigInteger)
    registros_totales: Mapped[int | None] = mapped_column(BigInteger)
    hash_md5: Mapped[str | None] = mapped_column(String(32))
    id_backup_base: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("historial_backup.id_backup", deferrable=True)
    )
    fecha_creacion: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    fecha_eliminacion: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    eliminado: Mapped[bool | None] = mapped_column(Boolean, server_default=text("false"))
    ejecutado_por: Mapped[str | None] = mapped_column(String(100))
    # ---- añadidas (el plan permite añadir, nunca quitar ni renombrar) ----
    fecha_actualizacion: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    # Estado de la base que guarda el archivo (instante de la instantánea).
    fecha_instantanea: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # En un COMPLETO: desde cuándo deben leer sus diferenciales (inicio de la transacción más
    # antigua abierta en la instantánea). En un DIFERENCIAL: el corte que usó.
    fecha_corte: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revision_esquema: Mapped[str | None] = mapped_column(String(64))
    huella_esquema: Mapped[str | None] = mapped_column(String(32))
    nota: Mapped[str | None] = mapped_column(Text)

    def resumen(self) -> str:
        """Una línea para el resultado de un job: qué se hizo, dónde, cuánto y la nota del motor."""
        texto = (
            f"Backup {self.tipo} {self.id_backup} completado: {self.nombre_archivo} "
            f"({self.tamanio_legible}, {self.duracion_segundos or 0:.1f} s, {self.registros_totales} registros)"
        )
        return f"{texto}. Nota: {self.nota}" if self.nota else texto


class PuntoRestauracion(Base):
    """En qué backup está una base restaurada: lo escribe al final cada archivo de backup.

    Cada diferencial o incremental lo consulta antes de tocar nada (se niega fuera de orden) y el
    backup siguiente también (tras restaurar a un punto viejo, el siguiente se hace COMPLETO).
    Los backups no copian su contenido.
    """

    __tablename__ = "punto_restauracion"

    id_backup: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tipo: Mapped[str] = mapped_column(String(20))
    nombre_archivo: Mapped[str] = mapped_column(String(255))
    id_backup_completo: Mapped[int] = mapped_column(BigInteger)
    fecha_instantanea: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fecha_restauracion: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Restauracion(Auditado, Base):
    """Cada restauración de un backup: qué, de qué archivos, quién, resultado y duración."""

    __tablename__ = "restauraciones"
    __table_args__ = (CheckConstraint("resultado IN ('OK', 'DIFERENCIAS', 'ERROR')", name="resultado"),)

    id_restauracion: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fecha_inicio: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duracion_segundos: Mapped[float | None] = mapped_column(Float)
    resultado: Mapped[str] = mapped_column(String(12))  # OK, DIFERENCIAS (filas) o ERROR
    id_backup: Mapped[int | None] = mapped_column(BigInteger)
    tipo: Mapped[str | None] = mapped_column(String(20))
    archivos: Mapped[str] = mapped_column(Text)  # la cadena, completo primero, separada por comas
    destino: Mapped[str] = mapped_column(String(300))  # URL sin contraseña
    ejecutado_por: Mapped[str] = mapped_column(String(100))
    filas: Mapped[int | None] = mapped_column(BigInteger)
    mensaje: Mapped[str | None] = mapped_column(Text)
