"""Copias fuera del sitio en la API de backups (`/api/v1/backup`). Solo ADMIN.

| Método | Ruta | Respuestas |
|---|---|---|
| POST | `/{id}/copiar-remoto` | 200 (copiado y verificado), 202 (con `esperar=false`), 404, 409, 502, 503 |
| GET  | `/{id}/manifiesto` | 200 (el `.manifest.json`), 404, 409, 410 |

El estado de cada copia sale además en `GET /{id}` y `/listar` (campos `remoto_*`) y en
`/estadisticas` (`fuera_del_sitio`). Nunca se muestran credenciales: el destino es el nombre del
remoto de rclone y la ruta.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from inventario.database import SessionDep
from inventario.errors import Conflicto, Desaparecido, NoEncontrado
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.remoto.model import CopiaRemota
from inventario.modules.remoto.service import MANIFEST_SUFFIX, RemotoService, state_fields
from inventario.modules.usuarios.dependencies import AdminUser
from inventario.openapi import ErrorSalida
from inventario.pagination import Id

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])

_TEXTOS = {
    401: "Falta el token o no es válido",
    403: "Se requiere el rol ADMIN",
    404: "No existe el backup",
    409: "El backup no está COMPLETADO (en proceso, con error) o no se puede leer su manifiesto",
    410: "El backup fue eliminado por la retención o su manifiesto ya no está en el disco",
    422: "Datos inválidos",
    502: "El remoto no respondió o rechazó la copia (el error queda en el backup y se reintentará)",
    503: "Copias fuera del sitio sin configurar (BACKUP_REMOTO), o base no disponible",
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


def _servicio(request: Request) -> RemotoService:
    return RemotoService(request.app.state.runtime)


def _salida(servicio: RemotoService, id_backup: int, state: CopiaRemota | None) -> dict[str, Any]:
    return {"id_backup": id_backup, "destino": servicio.settings.BACKUP_REMOTO, **state_fields(state)}


@router.post(
    "/{id_backup}/copiar-remoto",
    response_model=CopiaRemotaSalida,
    responses={
        202: {"model": CopiaRemotaSalida, "description": "Con esperar=false: copia en marcha"},
        **_errores(404, 409, 422, 502),
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
    session: SessionDep,
    _: AdminUser,
    esperar: Annotated[
        bool,
        Query(description="true (por defecto): responde al terminar. false: 202 y sigue en segundo plano"),
    ] = True,
) -> Any:
    servicio = _servicio(request)
    servicio.rclone()  # 503 si no está configurado, antes de mirar nada
    row = session.get(HistorialBackup, id_backup)
    if row is None:
        raise NoEncontrado(f"No existe el backup {id_backup}")
    if row.estado != "COMPLETADO" or row.eliminado:
        motivo = "fue eliminado por la retención" if row.eliminado else f"su estado es {row.estado}"
        raise Conflicto(f"El backup {id_backup} no se puede copiar fuera del sitio: {motivo}")
    session.close()  # la copia puede durar: no retener una conexión
    if not esperar:
        servicio.after_backup(id_backup)
        with servicio.runtime.session_factory() as own:
            body = _salida(servicio, id_backup, own.get(CopiaRemota, id_backup))
        return JSONResponse(CopiaRemotaSalida.model_validate(body).model_dump(mode="json"), status_code=202)
    state = servicio.copy(id_backup)  # 502 con el motivo si el remoto falla (queda en ERROR + ROJO)
    return _salida(servicio, id_backup, state)


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
def manifiesto(id_backup: Id, request: Request, session: SessionDep, _: AdminUser) -> Response:
    row = session.get(HistorialBackup, id_backup)
    if row is None:
        raise NoEncontrado(f"No existe el backup {id_backup}")
    if row.eliminado:
        raise Desaparecido(f"El backup {id_backup} fue eliminado por la política de retención")
    if row.estado != "COMPLETADO":
        raise Conflicto(f"El backup {id_backup} está {row.estado}: no tiene manifiesto")
    directory = request.app.state.runtime.settings.backup_dir
    # La ruta sale del catálogo, con el formato de nombre del plan; nunca del cliente.
    if "/" in row.nombre_archivo or not row.nombre_archivo.startswith("backup_"):
        raise Conflicto(f"El backup {id_backup} tiene un nombre de archivo inválido en el catálogo")
    name = row.nombre_archivo + MANIFEST_SUFFIX
    try:
        content = (directory / name).read_bytes()
        json.loads(content)
    except FileNotFoundError:
        raise Desaparecido(f"El manifiesto {name} ya no está en el directorio de backups") from None
    except (OSError, ValueError) as exc:
        raise Conflicto(f"No se pudo leer el manifiesto {name}: {exc}") from None
    return Response(
        content,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
