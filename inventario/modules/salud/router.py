from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inventario.modules.salud.service import ERROR, check_health

router = APIRouter(tags=["salud"])


@router.get("/health", summary="Estado de la base, el disco de backups y el planificador")
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    body = await run_in_threadpool(
        check_health, state.engine, state.settings, getattr(state, "scheduler_info", None)
    )
    return JSONResponse(body, status_code=503 if body["estado"] == ERROR else 200)
