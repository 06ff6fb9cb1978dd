"""Jobs programados (`/api/v1/jobs`). Solo ADMIN.

- `GET  /jobs`                        cada job: programación, próxima ejecución, última corrida y
                                      su resultado, estado (OK / DEGRADADO) y problema.
- `GET  /jobs/{job_id}`               lo mismo, de un job.
- `GET  /jobs/{job_id}/ejecuciones`   historial de corridas (paginado, la más reciente primero).
- `POST /jobs/{job_id}/ejecutar`      ejecuta el job ahora y devuelve la corrida registrada (con su
                                      estado: OK, OMITIDO o ERROR). 409 si ya se está ejecutando
                                      en cualquier instancia; 404 si el job no existe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from inventario.modules.planificador.schemas import EjecucionSalida, JobSalida
from inventario.modules.planificador.service import JobsService
from inventario.modules.usuarios.dependencies import AdminUser
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import Listado, PaginaDep

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses={**CON_TOKEN, **errores(403)})
NO_EXISTE = errores(404, 422, e404="No existe el job")

JobId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=50,
        description="backup_diario, backup_incremental, logs_maintenance o alertas_diarias",
    ),
]


def jobs_service(request: Request) -> JobsService:
    """El servicio de jobs de esta aplicación (el del planificador si corre; también la consola web)."""
    scheduler = getattr(request.app.state, "scheduler", None)
    return scheduler.service if scheduler is not None else JobsService(request.app.state.runtime)


def scheduler_since(request: Request) -> datetime | None:
    """Desde cuándo corre el planificador de este proceso o, en un worker de `serve --workers N`, el
    del proceso principal (None sin planificador)."""
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        return scheduler.desde
    return getattr(request.app.state, "planificador_principal_desde", None)


def _salida(item: dict[str, Any]) -> JobSalida:
    last = item["ultima_ejecucion"]
    return JobSalida(
        **{k: v for k, v in item.items() if k in JobSalida.model_fields and k != "ultima_ejecucion"},
        ultima_ejecucion=EjecucionSalida.desde(last, item["interrumpida"]) if last is not None else None,
    )


@router.get("", response_model=list[JobSalida], summary="Estado de los jobs programados")
def list_jobs(request: Request, _: AdminUser) -> list[JobSalida]:
    """Cada job: horario, próxima ejecución, última corrida y su resultado. Solo ADMIN."""
    service = jobs_service(request)
    return [
        _salida(i) for i in service.status(datetime.now(service.settings.tz), desde=scheduler_since(request))
    ]


@router.get("/{job_id}", response_model=JobSalida, summary="Estado de un job", responses=NO_EXISTE)
def get_job(job_id: JobId, request: Request, _: AdminUser) -> JobSalida:
    """Horario, próxima ejecución y última corrida de un job. Solo ADMIN."""
    service = jobs_service(request)
    service.job(job_id)  # 404
    items = service.status(datetime.now(service.settings.tz), desde=scheduler_since(request))
    return next(_salida(i) for i in items if i["job_id"] == job_id)


@router.get(
    "/{job_id}/ejecuciones",
    response_model=Listado[EjecucionSalida],
    summary="Historial de corridas de un job",
    responses=NO_EXISTE,
)
def job_history(job_id: JobId, request: Request, _: AdminUser, pagina: PaginaDep) -> dict[str, Any]:
    """Corridas de un job, la más reciente primero. Solo ADMIN."""
    datos = jobs_service(request).history(job_id, pagina)
    return {**datos, "items": [EjecucionSalida.desde(r) for r in datos["items"]]}


@router.post(
    "/{job_id}/ejecutar",
    response_model=EjecucionSalida,
    summary="Ejecutar un job ahora",
    responses={**NO_EXISTE, **errores(409, e409="El job ya se está ejecutando")},
)
def run_job(job_id: JobId, request: Request, user: AdminUser) -> EjecucionSalida:
    """Corre el job ya y devuelve la corrida registrada (OK, OMITIDO o ERROR). Solo ADMIN."""
    row = jobs_service(request).run_now(job_id, ejecutado_por=user.nombre_usuario)
    return EjecucionSalida.desde(row)
