from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inventario.modules.backup.service import BackupService
from inventario.modules.salud.service import DEGRADADO, ERROR, OK, check_health

router = APIRouter(tags=["salud"])
log = logging.getLogger(__name__)


def _close_stale_backups(service: BackupService) -> None:
    """Un backup EN_PROCESO de un proceso muerto (p. ej. una CLI con kill -9) no debe pasar por
    "en curso" mientras /health dice OK: se cierra en ERROR con su aviso ROJO."""
    try:
        closed = service.close_stale()
    except Exception as exc:  # la base caída la informa check_health; /health nunca es un 500
        log.warning("No se pudieron revisar los backups en proceso: %s", exc.__class__.__name__)
        return
    if closed:
        log.warning("Backups interrumpidos cerrados en ERROR: %s", closed)


@router.get(
    "/health",
    summary="Estado de la base, el disco de backups y el planificador",
    description=f"Sin token. `estado` es {OK}, {DEGRADADO} o {ERROR}, con el detalle de cada parte; "
    f"503 si algo está en {ERROR} (la base no responde, por ejemplo).",
    responses={
        200: {"description": f"{OK} o {DEGRADADO} (poco disco libre, por ejemplo)"},
        503: {"description": "Alguna parte en ERROR: el mismo cuerpo, con el detalle"},
    },
)
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    service = getattr(state, "backup_service", None)
    if service is not None:
        await run_in_threadpool(_close_stale_backups, service)
    body = await run_in_threadpool(
        check_health, state.engine, state.settings, getattr(state, "scheduler_info", None)
    )
    return JSONResponse(body, status_code=503 if body["estado"] == ERROR else 200)
