"""Job `logs_maintenance`: comprimir los logs rotados y borrar los comprimidos viejos."""

from __future__ import annotations

from datetime import datetime

from inventario.modules.logs.service import maintain
from inventario.modules.planificador.model import EstadoEjecucion
from inventario.modules.planificador.resultado import ContextoJob, JobFallido, ResultadoJob

JOB_ID = "logs_maintenance"


def run(ctx: ContextoJob) -> ResultadoJob:
    settings = ctx.runtime.settings
    result = maintain(settings, now=datetime.now(settings.tz))
    if result.errores:
        raise JobFallido(result.resumen())
    return ResultadoJob(EstadoEjecucion.OK, result.resumen())
