from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inventario.modules.salud.service import ERROR, check_health

router = APIRouter(tags=["salud"])


@router.get(
    "/health",
    summary="Estado de la base, el disco de backups y el planificador",
    description="Sin token. `estado` es OK, ADVERTENCIA o ERROR, con el detalle de cada parte; "
    "503 si algo está en ERROR (la base no responde, por ejemplo).",
    responses={
        200: {"description": "OK o ADVERTENCIA"},
        503: {"description": "Alguna parte en ERROR: el mismo cuerpo, con el detalle"},
    },
)
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    body = await run_in_threadpool(
        check_health, state.engine, state.settings, getattr(state, "scheduler_info", None)
    )
    return JSONResponse(body, status_code=503 if body["estado"] == ERROR else 200)
