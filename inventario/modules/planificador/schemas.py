from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class EjecucionSalida(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id_ejecucion: int
    job_id: str
    ambito: str
    programada_para: datetime
    inicio: datetime
    fin: datetime | None
    estado: str  # EN_CURSO, OK, ERROR, OMITIDO
    mensaje: str | None
    instancia: str
    manual: bool
    ejecutado_por: str | None
    duracion_segundos: float | None = None
    # EN_CURSO sin nadie que la ejecute: el proceso murió (se marca ERROR en la próxima corrida).
    interrumpida: bool = False

    @classmethod
    def desde(cls, row: object, interrumpida: bool = False) -> EjecucionSalida:
        out = cls.model_validate(row)
        if out.fin is not None:
            out.duracion_segundos = round((out.fin - out.inicio).total_seconds(), 3)
        out.interrumpida = interrumpida
        return out


class JobSalida(BaseModel):
    job_id: str
    nombre: str
    descripcion: str
    programacion: str  # "todos los días 03:00 America/Mexico_City"
    cron: str  # "0 3 * * *"
    hora: str
    zona_horaria: str
    ambito: str
    proxima_ejecucion: datetime
    en_curso: bool
    # OK o DEGRADADO (última corrida fallida o interrumpida, o no corrió cuando debía)
    estado: str
    problema: str | None
    ultima_ejecucion: EjecucionSalida | None
