"""Backups (`/api/v1/backup`): los nueve endpoints del plan, solo ADMIN (401 sin token, 403 con
otro rol), ninguno responde 500. Este módulo solo traduce HTTP; el resto es de `BackupService`.

- Ejecutar responde **202** con el registro `EN_PROCESO` (cabecera `Location`) en cuanto el backup
  empezó y lo termina en segundo plano; con `esperar=true`, **201** al terminar. Otro backup o una
  limpieza en curso: **409**, también antes del 202. Un fallo deja el registro en ERROR y responde
  **507** si fue por disco lleno, **503** si no. `ejecutado_por` es siempre el usuario del token
  (el `?usuario=` del plan se acepta y se ignora).
- Descargar y enviar por email verifican antes el MD5 contra el catálogo (409 si no coincide);
  eliminado o sin archivo: 410; EN_PROCESO o ERROR: 409. La ruta sale del catálogo, nunca del cliente.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from inventario.archivos import human_size
from inventario.database import SessionDep
from inventario.errors import Invalido
from inventario.fechas import RangoFechasDep
from inventario.jobs import backup_job
from inventario.modules.backup import queries
from inventario.modules.backup.exceptions import BackupError
from inventario.modules.backup.files import CHUNK
from inventario.modules.backup.model import TipoSolicitado
from inventario.modules.backup.schemas import (
    BackupDetalle,
    BackupFallido,
    BackupSalida,
    EjecutarBackup,
    EnviarEmail,
    EnvioEmail,
    EstadisticasBackup,
    EstadoFiltro,
    LimpiezaBackups,
    PuntoRestauracionSalida,
    TipoEntrada,
    TipoFiltro,
)
from inventario.modules.backup.service import BackupService, Descarga
from inventario.modules.usuarios.dependencies import AdminUser
from inventario.openapi import ErrorSalida
from inventario.pagination import Id, Listado, PaginaDep, page

log = logging.getLogger(__name__)

PREFIJO = "/api/v1/backup"
router = APIRouter(prefix=PREFIJO, tags=["backup"])


def _errores(*codigos: int) -> dict[int | str, dict[str, Any]]:
    textos = {
        401: "Falta el token o no es válido",
        403: "Se requiere el rol ADMIN",
        404: "No existe el backup",
        409: "Conflicto: backup en curso, o backup EN_PROCESO/ERROR, o archivo dañado (MD5 distinto)",
        410: "El backup fue eliminado o su archivo ya no está en el disco",
        413: "El archivo supera EMAIL_ADJUNTO_MAX_MB: descárguelo",
        422: "Datos inválidos",
        502: "El servidor SMTP no se alcanzó o rechazó el envío",
        503: "Servicio no disponible (email sin configurar, backup fallido, directorio o base no disponibles)",
        507: "El backup falló por falta de espacio en disco",
    }
    # Con la base caída cualquiera responde 503 (errors.install_handlers).
    return {c: {"model": ErrorSalida, "description": textos[c]} for c in sorted({401, 403, 503, *codigos})}


_IGNORADO = "Aceptado por compatibilidad con el plan (`?usuario=admin`) e ignorado: `ejecutado_por` es el usuario del token"
_ESPERAR = "false (por defecto): 202 al empezar, consulte GET /{id}. true: responde al terminar (201)"
UsuarioIgnorado = Annotated[str | None, Query(description=_IGNORADO)]
Esperar = Annotated[bool, Query(description=_ESPERAR)]


def _servicio(request: Request) -> BackupService:
    return request.app.state.backup_service  # uno por aplicación: espera a sus hilos al cerrar


def _detalle(detalle: dict[str, Any]) -> dict[str, Any]:
    base = detalle["base"]
    return {
        **BackupSalida.model_validate(detalle["backup"]).model_dump(),
        "base": BackupSalida.model_validate(base).model_dump() if base is not None else None,
        "diferenciales": detalle["diferenciales"],
        "archivo_disponible": detalle["archivo_disponible"],
    }


def _respuesta_backup(
    servicio: BackupService, id_backup: int, status: int, detalle: str | None = None
) -> JSONResponse:
    modelo = BackupDetalle if detalle is None else BackupFallido
    datos = {**_detalle(servicio.detail_now(id_backup)), "detalle": detalle}
    cuerpo = modelo.model_validate(datos).model_dump(mode="json")
    return JSONResponse(cuerpo, status_code=status, headers={"Location": f"{PREFIJO}/{id_backup}"})


def _ejecutar(request: Request, usuario: str, tipo: TipoSolicitado, esperar: bool) -> JSONResponse:
    servicio = _servicio(request)
    try:
        if not esperar:
            return _respuesta_backup(servicio, servicio.start_in_background(tipo, usuario), 202)
        row = servicio.run(tipo, usuario)
    except BackupError as exc:  # 503 o 507, con el registro ERROR si se pudo escribir
        if exc.id_backup is None:
            raise
        return _respuesta_backup(servicio, exc.id_backup, exc.status, detalle=exc.mensaje)
    return _respuesta_backup(servicio, row.id_backup, 201)


_EJECUTAR: dict[str, Any] = {
    "response_model": BackupDetalle,
    "status_code": 202,
    "responses": {
        201: {"model": BackupDetalle, "description": "Con esperar=true: el backup terminó (COMPLETADO)"},
        **_errores(409, 422),
        503: {"model": BackupFallido, "description": "El backup falló (registro en ERROR) o no pudo empezar"},
        507: {"model": BackupFallido, "description": "El backup falló por disco lleno (registro en ERROR)"},
    },
}


@router.post(
    "/ejecutar",
    **_EJECUTAR,
    summary="Ejecutar un backup manual (COMPLETO, DIFERENCIAL, INCREMENTAL o AUTO)",
    description="202 al empezar (consulte GET /{id}); con esperar=true, 201 al terminar. Solo ADMIN.",
)
def run_backup(
    request: Request,
    user: AdminUser,
    datos: Annotated[EjecutarBackup | None, Body()] = None,
    tipo: Annotated[
        TipoEntrada | None,
        Query(
            description="COMPLETO, DIFERENCIAL, INCREMENTAL o AUTO (el del día, como el job). También en el cuerpo"
        ),
    ] = None,
    esperar: Esperar = False,
    usuario: UsuarioIgnorado = None,
) -> JSONResponse:
    en_cuerpo = datos.tipo if datos is not None else None
    if tipo is not None and en_cuerpo is not None and tipo != en_cuerpo:
        raise Invalido(
            f"Datos inválidos: el tipo de la query ({tipo}) y el del cuerpo ({en_cuerpo}) no coinciden"
        )
    return _ejecutar(request, user.nombre_usuario, tipo or en_cuerpo or TipoSolicitado.AUTO, esperar)


@router.post(
    "/ejecutar-completo",
    **_EJECUTAR,
    summary="Atajo: backup COMPLETO",
    description="Lo mismo que /ejecutar con tipo COMPLETO. Solo ADMIN.",
)
def run_full(
    request: Request, user: AdminUser, esperar: Esperar = False, usuario: UsuarioIgnorado = None
) -> JSONResponse:
    return _ejecutar(request, user.nombre_usuario, TipoSolicitado.COMPLETO, esperar)


@router.post(
    "/ejecutar-diferencial",
    **_EJECUTAR,
    summary="Atajo: backup DIFERENCIAL (se hace COMPLETO si no hay un completo utilizable)",
    description="Lo mismo que /ejecutar con tipo DIFERENCIAL. Solo ADMIN.",
)
def run_differential(
    request: Request, user: AdminUser, esperar: Esperar = False, usuario: UsuarioIgnorado = None
) -> JSONResponse:
    return _ejecutar(request, user.nombre_usuario, TipoSolicitado.DIFERENCIAL, esperar)


def _proxima_ejecucion(request: Request) -> datetime | None:
    """La próxima corrida del job `backup_diario` según el planificador (None si no se puede saber)."""
    info = getattr(request.app.state, "scheduler_info", None)
    try:
        jobs = info()["jobs"] if info is not None else []
    except Exception:
        log.warning("No se pudo consultar el planificador para /estadisticas", exc_info=True)
        return None
    proxima = next((j["proxima_ejecucion"] for j in jobs if j["job_id"] == backup_job.JOB_ID), None)
    return datetime.fromisoformat(proxima) if proxima else None


@router.get(
    "/estadisticas",
    response_model=EstadisticasBackup,
    responses=_errores(),
    summary="Estadísticas del sistema de backups",
    description="Totales, espacio usado y libre, último error y próxima corrida programada. Solo ADMIN.",
)
def statistics(request: Request, session: SessionDep, _: AdminUser) -> dict[str, Any]:
    return _servicio(request).statistics(session, lambda: _proxima_ejecucion(request))


@router.get(
    "/listar",
    response_model=Listado[BackupSalida],
    responses=_errores(422),
    summary="Backups, del más nuevo al más viejo",
    description="Catálogo paginado con filtros por tipo, estado y fechas. Solo ADMIN.",
)
def list_backups(
    session: SessionDep,
    _: AdminUser,
    pagina: PaginaDep,
    fechas: RangoFechasDep,
    tipo: Annotated[TipoFiltro | None, Query(description="COMPLETO, DIFERENCIAL o INCREMENTAL")] = None,
    estado: Annotated[EstadoFiltro | None, Query(description="EN_PROCESO, COMPLETADO o ERROR")] = None,
    incluir_eliminados: Annotated[bool, Query(description="Incluir los eliminados por la retención")] = False,
) -> dict[str, Any]:
    consulta = queries.listar(tipo=tipo, estado=estado, fechas=fechas, incluir_eliminados=incluir_eliminados)
    return page(session, consulta, pagina)


@router.post(
    "/limpiar",
    response_model=LimpiezaBackups,
    responses=_errores(409),
    summary="Aplicar ahora la retención (BACKUP_RETENTION_DAYS)",
    description="Borra los backups vencidos (nunca el último completo ni uno del que dependa un diferencial) y dice cuáles. Solo ADMIN.",
)
def cleanup(request: Request, _: AdminUser) -> dict[str, Any]:
    servicio = _servicio(request)
    resultado = servicio.cleanup()
    return {
        "dias_retencion": servicio.settings.BACKUP_RETENTION_DAYS,
        "ids_eliminados": [r.id_backup for r in resultado.eliminados],
        "eliminados": resultado.eliminados,
        "bytes_liberados": resultado.bytes_liberados,
        "bytes_liberados_legible": human_size(resultado.bytes_liberados),
        "conservados_por_dependencia": resultado.conservados_por_dependencia,
        "temporales_borrados": resultado.temporales_borrados,
    }


@router.get(
    "/puntos-restauracion",
    response_model=Listado[PuntoRestauracionSalida],
    responses=_errores(422),
    summary="Puntos de restauración, del más nuevo al más viejo, con los archivos que necesita cada uno",
    description=(
        "Cada backup cuya cadena entera (completo, diferencial, incrementales) está en el directorio de "
        "backups, con su `fecha_instantanea` (el estado de la base que se recupera) y los archivos en el "
        "orden en que se aplican. Restaurar: `inventario backup restaurar ID` o "
        '`--hasta "AAAA-MM-DD HH:MM"`. Solo ADMIN.'
    ),
)
def restore_points(request: Request, _: AdminUser, pagina: PaginaDep) -> dict[str, Any]:
    puntos = _servicio(request).restore_points()
    items = []
    for punto in puntos[pagina.offset : pagina.offset + pagina.limit]:
        manifest = punto.link.manifest
        total = sum(link.manifest.tamanio_bytes for link in punto.chain)
        items.append(
            {
                "id_backup": manifest.id_backup,
                "tipo": manifest.tipo,
                "nombre_archivo": manifest.nombre_archivo,
                "fecha_instantanea": manifest.fecha_instantanea,
                "fecha_creacion": manifest.fecha_creacion,
                "archivos": [
                    {
                        "id_backup": link.manifest.id_backup,
                        "tipo": link.manifest.tipo,
                        "nombre_archivo": link.manifest.nombre_archivo,
                        "hash_md5": link.manifest.hash_md5,
                        "tamanio_bytes": link.manifest.tamanio_bytes,
                    }
                    for link in punto.chain
                ],
                "tamanio_total_bytes": total,
                "tamanio_total_legible": human_size(total),
            }
        )
    return {"total": len(puntos), "offset": pagina.offset, "limit": pagina.limit, "items": items}


@router.get(
    "/{id_backup}",
    response_model=BackupDetalle,
    responses=_errores(404, 422),
    summary="Un backup; un diferencial trae su completo base en `base`",
    description="Un backup del catálogo con su completo base y sus diferenciales. Solo ADMIN.",
)
def get_backup(id_backup: Id, request: Request, session: SessionDep, _: AdminUser) -> dict[str, Any]:
    return _detalle(_servicio(request).detail(session, id_backup))


def _stream(fh: Any, size: int) -> Iterator[bytes]:
    with fh:
        restante = size
        while restante > 0 and (chunk := fh.read(min(CHUNK, restante))):
            restante -= len(chunk)
            yield chunk


@router.get(
    "/{id_backup}/descargar",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/gzip": {}}, "description": "El archivo `.sql.gz`, verificado"},
        **_errores(404, 409, 410, 422),
    },
    summary="Descargar el archivo del backup (MD5 verificado antes de enviar)",
    description="El .sql.gz en streaming con su MD5 en X-Checksum-MD5. Solo ADMIN.",
)
def download(id_backup: Id, request: Request, _: AdminUser) -> StreamingResponse:
    return download_response(_servicio(request).open_download(id_backup))


def download_response(descarga: Descarga) -> StreamingResponse:
    """El archivo verificado en streaming, con su MD5 en las cabeceras (API y consola web)."""
    archivo = descarga.archivo
    headers = {
        "Content-Disposition": f'attachment; filename="{descarga.nombre_archivo}"',
        "Content-Length": str(archivo.size),
        "X-Checksum-MD5": archivo.md5_hex,
        "Content-MD5": base64.b64encode(archivo.md5).decode("ascii"),
        "ETag": f'"{archivo.md5_hex}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(
        _stream(archivo.fh, archivo.size), media_type="application/gzip", headers=headers
    )


@router.post(
    "/{id_backup}/enviar-email",
    response_model=EnvioEmail,
    responses=_errores(404, 409, 410, 413, 422, 502, 503),
    summary="Enviar el backup por email como adjunto (SMTP)",
    description="Envía el archivo por SMTP a email_destino. Solo ADMIN.",
)
def send_email(id_backup: Id, datos: EnviarEmail, request: Request, user: AdminUser) -> dict[str, Any]:
    if datos.id_backup is not None and datos.id_backup != id_backup:
        raise Invalido(
            f"Datos inválidos: cuerpo.id_backup ({datos.id_backup}) no coincide con el id de la ruta ({id_backup})"
        )
    return _servicio(request).send_email(id_backup, datos.email_destino, user.nombre_usuario)
