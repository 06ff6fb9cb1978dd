"""Copias fuera del sitio en la API de backups (`/api/v1/backup`). Solo ADMIN.

| Método | Ruta | Respuestas |
|---|---|---|
| POST | `/{id}/copiar-remoto` | 200 (copiado y verificado), 202 (con `esperar=false`), 404, 409 (sin BACKUP_REMOTO, o el backup no está COMPLETADO), 410 (el archivo local ya no está), 502, 503 (no se puede leer) |
| GET  | `/{id}/manifiesto` | 200 (el `.manifest.json`), 404, 409, 410 |

El estado de cada copia sale además en `GET /{id}` y `/listar` (campos `remoto_*`) y en
`/estadisticas` (`fuera_del_sitio`). Nunca se muestran credenciales: el destino es el nombre del
remoto de rclone y la ruta.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from inventario.modules.backup.service import BackupService
from inventario.modules.remoto.model import CopiaRemota
from inventario.modules.remoto.service import state_fields
from inventario.modules.usuarios.dependencies import AdminUser
from inventario.openapi import ErrorSalida
from inventario.pagination import Id

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])

_TEXTOS = {
    401: "Falta el token o no es válido",
    403: "Se requiere el rol ADMIN",
    404: "No existe el backup",
    409: "Copias fuera del sitio sin configurar (BACKUP_REMOTO), o el backup no está COMPLETADO, o su manifiesto no se puede leer",
    410: "El backup fue eliminado por la retención, o su archivo o su manifiesto ya no está en el disco",
    422: "Datos inválidos",
    502: "El remoto no respondió o rechazó la copia (el error queda en el backup y se reintentará)",
    503: "Base de datos no disponible, o el archivo del backup no se puede leer",
}


def _errores(*codigos: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorSalida, "description": _TEXTOS[c]} for c in sorted({401, 403, 503, *codigos})}


class CopiaRemotaSalida(BaseModel):
    id_backup: int
    destino: str | None
    remoto_estado: str | None
    remoto_fecha: Any = None
    remoto_hash: str | None
    remoto_error: str | None
    remoto_objeto: str | None
    remoto_eliminado: bool


def _servicio(request: Request) -> BackupService:
    return request.app.state.backup_service  # la única puerta a los backups


def _salida(servicio: BackupService, id_backup: int, state: CopiaRemota | None) -> dict[str, Any]:
    return {"id_backup": id_backup, "destino": servicio.settings.BACKUP_REMOTO, **state_fields(state)}


@router.post(
    "/{id_backup}/copiar-remoto",
    response_model=CopiaRemotaSalida,
    responses={
        202: {"model": CopiaRemotaSalida, "description": "Con esperar=false: copia en marcha"},
        **_errores(404, 409, 410, 422, 502, 503),
    },
    summary="Copiar (o reintentar) un backup fuera del sitio",
    description=(
        "Cifra (si hay BACKUP_CIFRADO_DESTINATARIOS), sube a BACKUP_REMOTO y verifica tamaño y suma; su "
        "completo base va primero si aún no está. Con esperar=false responde 202 y copia en segundo "
        "plano. Solo ADMIN."
    ),
)
def copiar_remoto(
    id_backup: Id,
    request: Request,
    _: AdminUser,
    esperar: Annotated[
        bool,
        Query(description="true (por defecto): responde al terminar. false: 202 y sigue en segundo plano"),
    ] = True,
) -> Any:
    servicio = _servicio(request)
    state = servicio.copy_offsite(id_backup, wait=esperar)
    body = _salida(servicio, id_backup, state)
    if esperar:
        return body
    return JSONResponse(CopiaRemotaSalida.model_validate(body).model_dump(mode="json"), status_code=202)


@router.get(
    "/{id_backup}/manifiesto",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "El `ARCHIVO.sql.gz.manifest.json`"},
        **_errores(404, 409, 410, 422),
    },
    summary="El manifiesto de un backup (para verificar un archivo descargado)",
    description=(
        "El manifiesto tal como está junto al archivo: MD5, tamaños, tablas y de qué completo depende. "
        "Con él, `inventario backup verificar` comprueba un archivo bajado a otra máquina. Solo ADMIN."
    ),
)
def manifiesto(id_backup: Id, request: Request, _: AdminUser) -> Response:
    name, content = _servicio(request).manifest_file(id_backup)
    return Response(
        content,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
