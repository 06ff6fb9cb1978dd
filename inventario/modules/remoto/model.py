"""La tabla `copia_remota`: el estado fuera del sitio de cada backup (migración 9a4c1e7d3b58)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from inventario.database import Auditado, Base
from inventario.modules.backup.model import HistorialBackup


class EstadoRemoto(StrEnum):
    PENDIENTE = "PENDIENTE"
    COPIADO = "COPIADO"
    ERROR = "ERROR"


class CopiaRemota(Auditado, Base):
    __tablename__ = "copia_remota"

    id_backup: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("historial_backup.id_backup", deferrable=True),
        primary_key=True,
    )
    estado: Mapped[str] = mapped_column(String(12), index=True)
    fecha_estado: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    fecha_copia: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    destino: Mapped[str | None] = mapped_column(String(500))  # BACKUP_REMOTO, sin credenciales
    objeto: Mapped[str | None] = mapped_column(String(300))  # nombre del archivo en el remoto
    cifrado: Mapped[bool | None] = mapped_column(Boolean)
    tamanio_remoto: Mapped[int | None] = mapped_column(BigInteger)
    hash_remoto: Mapped[str | None] = mapped_column(String(32))  # MD5 del objeto tal como se subió
    sha256_remoto: Mapped[str | None] = mapped_column(String(64))
    mensaje_error: Mapped[str | None] = mapped_column(Text)
    intentos: Mapped[int] = mapped_column(Integer, server_default="0")
    proximo_intento: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    eliminado_remoto: Mapped[bool] = mapped_column(Boolean, server_default="false")
    fecha_eliminacion_remota: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # `HistorialBackup.copia_remota`: la API muestra el estado fuera del sitio junto a cada backup
    # (selectin: una consulta más por página, no una por fila).
    backup: Mapped[HistorialBackup] = relationship(
        HistorialBackup,
        viewonly=True,
        backref=backref("copia_remota", uselist=False, lazy="selectin", viewonly=True),
    )
