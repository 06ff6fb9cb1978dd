from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from inventario.database import Auditado, Base


class EstadoEjecucion(StrEnum):
    """Columna `estado` de `ejecuciones_job` (la restricción `estado` de la tabla lista los mismos)."""

    EN_CURSO = "EN_CURSO"
    OK = "OK"
    ERROR = "ERROR"
    OMITIDO = "OMITIDO"


class EjecucionJob(Auditado, Base):
    """Registro de corridas de los jobs: una fila por (job, ámbito, hora programada).

    La restricción única es la que garantiza "una sola vez" entre instancias: la que logra insertar
    la fila ejecuta el job; las demás ven que ya se hizo (o se está haciendo) y no hacen nada.
    """

    __tablename__ = "ejecuciones_job"
    __table_args__ = (
        UniqueConstraint("job_id", "ambito", "programada_para", name="uq_ejecuciones_job_corrida"),
        CheckConstraint("estado IN ('EN_CURSO', 'OK', 'ERROR', 'OMITIDO')", name="estado"),
    )

    id_ejecucion: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(50))
    # '' para los jobs de todo el despliegue; "host:LOGS_PATH" para los que cuidan algo local de
    # cada máquina (logs_maintenance): así cada máquina comprime sus propios logs una vez.
    ambito: Mapped[str] = mapped_column(String(500), server_default="")
    # La hora programada que cubre esta corrida; en una corrida manual, el instante en que se pidió.
    programada_para: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    inicio: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    fin: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    estado: Mapped[str] = mapped_column(String(12))
    mensaje: Mapped[str | None] = mapped_column(Text)
    instancia: Mapped[str] = mapped_column(String(200))  # host:pid del proceso que la ejecutó
    manual: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    ejecutado_por: Mapped[str | None] = mapped_column(String(100))  # SCHEDULER, RECUPERACION, usuario...
