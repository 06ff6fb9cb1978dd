"""Job `alertas_diarias`: alertas de vencimiento y de stock en `notificaciones`."""

from __future__ import annotations

from inventario.modules.alertas.service import generate_alerts
from inventario.modules.planificador.model import EstadoEjecucion
from inventario.modules.planificador.resultado import ContextoJob, ResultadoJob

JOB_ID = "alertas_diarias"


def run(ctx: ContextoJob) -> ResultadoJob:
    result = generate_alerts(ctx.runtime.engine, ctx.runtime.settings.ALERTAS_DIAS_VENCIMIENTO)
    return ResultadoJob(EstadoEjecucion.OK, result.resumen())
