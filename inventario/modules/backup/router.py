"""Backups (`/api/v1/backup`): los nueve endpoints del plan de mantenimiento. Solo ADMIN
(401 sin token, 403 con otro rol). Ningún error de estos endpoints es un 500.

| Método | Ruta | Respuestas |
|---|---|---|
| GET  | `/estadisticas` | 200 |
| GET  | `/listar` | 200 (paginado; 422 filtros inválidos) |
| POST | `/ejecutar` (`tipo` COMPLETO/DIFERENCIAL/AUTO en el cuerpo o la query) | 202, 201, 409, 503, 507 |
| POST | `/ejecutar-completo`, `/ejecutar-diferencial` | 202, 201, 409, 503, 507 |
| POST | `/limpiar` | 200, 409 |
| GET  | `/{id}` | 200, 404 |
| GET  | `/{id}/descargar` | 200 (el `.sql.gz`), 404, 409, 410 |
| POST | `/{id}/enviar-email` | 200, 404, 409, 410, 413, 422, 502, 503 |

Ejecutar:
- `ejecutado_por` es siempre el `nombre_usuario` del token. El `?usuario=admin` del plan se
  acepta y se ignora (no se puede firmar un backup a nombre de otro).
- Por defecto responde **202** con el registro `EN_PROCESO` (cabecera `Location`) en cuanto el
  backup empezó, y el backup sigue en un hilo; el cliente consulta `GET /{id}` hasta que `estado`
  sea COMPLETADO o ERROR. Con `esperar=true` responde al terminar: **201** con el registro
  COMPLETADO.
- Otro backup (o una limpieza) en curso: **409** "Backup en curso", también en el camino del 202
  (se detecta antes de responder).
- Un backup que falla con `esperar=true` responde con el registro en ERROR y `detalle`:
  **507** (Insufficient Storage) si fue por disco lleno, **503** en cualquier otro caso (el
  servicio de backup no pudo completar; reintentar puede funcionar). Nunca 500.

Descargar y enviar por email verifican antes el MD5 del archivo contra el catálogo (409 si no
coincide). Un backup eliminado por la retención o cuyo archivo ya no está: 410. EN_PROCESO o
ERROR: 409. La ruta del archivo sale siempre del catálogo (`BackupService.file_path`), nunca del
cliente.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any

import psycopg
from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BeforeValidator, WithJsonSchema
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from inventario.archivos import human_size, nearest_existing
from inventario.database import SessionDep
from inventario.errors import (
    Conflicto,
    DemasiadoGrande,
    Desaparecido,
    DomainError,
    Invalido,
    NoDisponible,
)
from inventario.modules.backup import email as correo
from inventario.modules.backup import queries
from inventario.modules.backup.files import CHUNK
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.notifications import notify
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
    TipoEntrada,
    TipoFiltro,
    TipoSolicitado,
)
from inventario.modules.backup.service import BackupEnCurso, BackupError, BackupIniciado, BackupService
from inventario.modules.usuarios.dependencies import AdminUser
from inventario.modules.usuarios.model import Usuario
from inventario.openapi import ErrorSalida
from inventario.pagination import Id, Listado, PaginaDep
from inventario.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])

PREFIJO = "/api/v1/backup"
JOB_BACKUP = "backup_diario"  # id del job del plan


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


# ------------------------------------------------------------------ tipos de la query


def _fecha_query(fin_del_dia: bool) -> Any:
    def parse(value: object) -> object:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError("debe ser una fecha AAAA-MM-DD o una fecha y hora ISO 8601")
        texto = value.strip()
        try:
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", texto):
                dia = datetime.fromisoformat(texto)
                # `hasta=2025-12-03` incluye todo ese día.
                return dia.replace(hour=23, minute=59, second=59, microsecond=999999) if fin_del_dia else dia
            if not re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]", texto):
                raise ValueError
            return datetime.fromisoformat(texto.replace("z", "Z").replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise ValueError("debe ser una fecha AAAA-MM-DD o una fecha y hora ISO 8601") from None

    return parse


_FECHA_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time"})
Desde = Annotated[datetime, BeforeValidator(_fecha_query(False)), _FECHA_SCHEMA]
Hasta = Annotated[datetime, BeforeValidator(_fecha_query(True)), _FECHA_SCHEMA]

UsuarioIgnorado = Annotated[
    str | None,
    Query(
        description="Aceptado por compatibilidad con el plan (`?usuario=admin`) e ignorado: "
        "`ejecutado_por` es siempre el usuario del token",
    ),
]
Esperar = Annotated[
    bool,
    Query(
        description="false (por defecto): 202 al empezar, consulte GET /{id}. true: responde al terminar (201)"
    ),
]


# ------------------------------------------------------------------ utilidades


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _servicio(request: Request) -> BackupService:
    return BackupService(_runtime(request), notifier=notify)


def _archivo_disponible(servicio: BackupService, row: HistorialBackup) -> bool:
    if row.estado != "COMPLETADO" or row.eliminado:
        return False
    try:
        path = servicio.file_path(row.nombre_archivo)
        return path.is_file() and path.stat().st_size == row.tamanio_bytes
    except (OSError, DomainError):
        return False


def _detalle(session: Session, servicio: BackupService, row: HistorialBackup) -> dict[str, Any]:
    datos = BackupSalida.model_validate(row).model_dump()
    base = session.get(HistorialBackup, row.id_backup_base) if row.id_backup_base else None
    datos["base"] = BackupSalida.model_validate(base).model_dump() if base is not None else None
    datos["diferenciales"] = (
        queries.diferenciales_de(session, row.id_backup) if row.tipo == "COMPLETO" else []
    )
    datos["archivo_disponible"] = _archivo_disponible(servicio, row)
    return datos


def _respuesta_backup(
    request: Request, id_backup: int, status: int, detalle: str | None = None
) -> JSONResponse:
    servicio = _servicio(request)
    with request.app.state.session_factory() as session:
        row = servicio.get(session, id_backup)
        datos = _detalle(session, servicio, row)
    modelo = BackupDetalle if detalle is None else BackupFallido
    if detalle is not None:
        datos["detalle"] = detalle
    cuerpo = modelo.model_validate(datos).model_dump(mode="json")
    return JSONResponse(cuerpo, status_code=status, headers={"Location": f"{PREFIJO}/{id_backup}"})


def _disco_lleno(exc: BaseException | None, mensaje: str | None = None) -> bool:
    vistos: set[int] = set()
    while exc is not None and id(exc) not in vistos:
        vistos.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return bool(mensaje) and ("No space left" in mensaje or "Disk quota" in mensaje)  # type: ignore[operator]


# ------------------------------------------------------------------ ejecutar


def _hilos(app: FastAPI) -> set[threading.Thread]:
    hilos = getattr(app.state, "backup_hilos", None)
    if hilos is None:
        hilos = set()
        app.state.backup_hilos = hilos
    return hilos


def esperar_backups_en_segundo_plano(app: FastAPI, timeout: float | None = None) -> bool:
    """Para el cierre del servicio: espera a los backups lanzados con 202. True si no queda ninguno."""
    for hilo in list(_hilos(app)):
        hilo.join(timeout)
    return not any(h.is_alive() for h in _hilos(app))


def _fallo(request: Request, exc: BaseException) -> JSONResponse:
    """Traduce el fallo de un backup a una respuesta que no es 500."""
    if isinstance(exc, BackupEnCurso):
        raise exc
    if isinstance(exc, BackupError):
        status = 507 if _disco_lleno(exc, exc.mensaje) else 503
        if exc.id_backup is not None:
            return _respuesta_backup(request, exc.id_backup, status, detalle=exc.mensaje)
        return JSONResponse({"detalle": exc.mensaje}, status_code=status)
    if isinstance(exc, SQLAlchemyError | psycopg.OperationalError):
        raise NoDisponible(
            "Base de datos no disponible; no se pudo hacer el backup. Intente más tarde"
        ) from None
    raise NoDisponible(f"No se pudo hacer el backup: {exc.__class__.__name__}: {exc}") from None


def _terminar_en_segundo_plano(app: FastAPI, iniciado: BackupIniciado) -> None:
    hilos = _hilos(app)

    def trabajo() -> None:
        try:
            iniciado.finish()
        except BackupError:
            pass  # el motor ya lo registró: fila ERROR, notificación y error.log
        except BaseException:
            log.exception("El backup %s falló en segundo plano", iniciado.id_backup)
        finally:
            hilos.discard(threading.current_thread())

    hilo = threading.Thread(target=trabajo, name=f"backup-{iniciado.id_backup}", daemon=True)
    hilos.add(hilo)
    try:
        hilo.start()
    except BaseException:
        hilos.discard(hilo)
        iniciado.abandon("No se pudo lanzar el backup en segundo plano")
        raise


def _ejecutar(request: Request, user: Usuario, tipo: TipoSolicitado, esperar: bool) -> JSONResponse:
    try:
        iniciado = _servicio(request).start(tipo, user.nombre_usuario)
        if esperar:
            row = iniciado.finish()
            return _respuesta_backup(request, row.id_backup, 201)
    except Exception as exc:
        return _fallo(request, exc)
    _terminar_en_segundo_plano(request.app, iniciado)
    return _respuesta_backup(request, iniciado.id_backup, 202)


_RESPUESTAS_EJECUTAR: dict[int | str, dict[str, Any]] = {
    201: {"model": BackupDetalle, "description": "Con esperar=true: el backup terminó (COMPLETADO)"},
    **_errores(409, 422),
    503: {"model": BackupFallido, "description": "El backup falló (registro en ERROR) o no pudo empezar"},
    507: {"model": BackupFallido, "description": "El backup falló por disco lleno (registro en ERROR)"},
}


@router.post(
    "/ejecutar",
    response_model=BackupDetalle,
    status_code=202,
    responses=_RESPUESTAS_EJECUTAR,
    summary="Ejecutar un backup manual (COMPLETO, DIFERENCIAL o AUTO)",
    description="202 al empezar (consulte GET /{id}); con esperar=true, 201 al terminar. Solo ADMIN.",
)
def ejecutar(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    datos: Annotated[EjecutarBackup | None, Body()] = None,
    tipo: Annotated[
        TipoEntrada | None,
        Query(description="COMPLETO, DIFERENCIAL o AUTO (el del día, como el job). También en el cuerpo"),
    ] = None,
    esperar: Esperar = False,
    usuario: UsuarioIgnorado = None,
) -> JSONResponse:
    del usuario
    session.close()  # sin transacción abierta mientras dura el backup
    en_cuerpo = datos.tipo if datos is not None else None
    if tipo is not None and en_cuerpo is not None and tipo != en_cuerpo:
        raise Invalido(
            f"Datos inválidos: el tipo de la query ({tipo}) y el del cuerpo ({en_cuerpo}) no coinciden"
        )
    return _ejecutar(request, user, tipo or en_cuerpo or "AUTO", esperar)


@router.post(
    "/ejecutar-completo",
    response_model=BackupDetalle,
    status_code=202,
    responses=_RESPUESTAS_EJECUTAR,
    summary="Atajo: backup COMPLETO",
    description="Lo mismo que /ejecutar con tipo COMPLETO. Solo ADMIN.",
)
def ejecutar_completo(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    esperar: Esperar = False,
    usuario: UsuarioIgnorado = None,
) -> JSONResponse:
    del usuario
    session.close()
    return _ejecutar(request, user, "COMPLETO", esperar)


@router.post(
    "/ejecutar-diferencial",
    response_model=BackupDetalle,
    status_code=202,
    responses=_RESPUESTAS_EJECUTAR,
    summary="Atajo: backup DIFERENCIAL (se hace COMPLETO si no hay un completo utilizable)",
    description="Lo mismo que /ejecutar con tipo DIFERENCIAL. Solo ADMIN.",
)
def ejecutar_diferencial(
    request: Request,
    session: SessionDep,
    user: AdminUser,
    esperar: Esperar = False,
    usuario: UsuarioIgnorado = None,
) -> JSONResponse:
    del usuario
    session.close()
    return _ejecutar(request, user, "DIFERENCIAL", esperar)


# ------------------------------------------------------------------ consultas


def _espacio_libre(directorio: Path) -> int | None:
    path = nearest_existing(directorio)
    try:
        return shutil.disk_usage(path).free if path.is_dir() else None
    except OSError:
        return None


def _proxima_ejecucion(request: Request) -> datetime | None:
    """La próxima corrida del job `backup_diario`, según `app.state.scheduler_info()` (si existe)."""
    info_fn = getattr(request.app.state, "scheduler_info", None)
    if not callable(info_fn):
        return None
    try:
        info = info_fn()
    except Exception:
        log.warning("No se pudo consultar el planificador para /estadisticas", exc_info=True)
        return None
    if not isinstance(info, dict):
        return None
    valor: object = None
    for job in info.get("jobs") or []:
        if isinstance(job, dict) and JOB_BACKUP in (job.get("id"), job.get("job_id")):
            valor = next(
                (job[k] for k in ("proxima_ejecucion", "next_run_time", "proxima") if job.get(k) is not None),
                None,
            )
            break
    if isinstance(valor, datetime):
        return valor
    if isinstance(valor, str):
        try:
            return datetime.fromisoformat(valor.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


@router.get(
    "/estadisticas",
    response_model=EstadisticasBackup,
    responses=_errores(),
    summary="Estadísticas del sistema de backups",
    description="Totales, espacio usado y libre, último error y próxima corrida programada. Solo ADMIN.",
)
def estadisticas(request: Request, session: SessionDep, _: AdminUser) -> dict[str, Any]:
    settings = _runtime(request).settings
    datos = queries.estadisticas(session)
    libre = _espacio_libre(settings.backup_dir)
    datos.update(
        espacio_usado_legible=human_size(datos["espacio_usado_bytes"]),
        dias_retencion=settings.BACKUP_RETENTION_DAYS,
        backups_habilitados=settings.BACKUP_ENABLED,
        espacio_libre_bytes=libre,
        espacio_libre_legible=human_size(libre) if libre is not None else None,
        proxima_ejecucion=_proxima_ejecucion(request) if settings.BACKUP_ENABLED else None,
    )
    from inventario.modules.remoto.service import RemotoService

    datos["fuera_del_sitio"] = RemotoService(_runtime(request)).summary(session)
    return datos


@router.get(
    "/listar",
    response_model=Listado[BackupSalida],
    responses=_errores(422),
    summary="Backups, del más nuevo al más viejo",
    description="Catálogo paginado con filtros por tipo, estado y fechas. Solo ADMIN.",
)
def listar(
    request: Request,
    session: SessionDep,
    _: AdminUser,
    pagina: PaginaDep,
    tipo: Annotated[TipoFiltro | None, Query(description="COMPLETO o DIFERENCIAL")] = None,
    estado: Annotated[EstadoFiltro | None, Query(description="EN_PROCESO, COMPLETADO o ERROR")] = None,
    desde: Annotated[
        Desde | None,
        Query(description="fecha_creacion >= desde (AAAA-MM-DD o ISO 8601; sin zona: ZONA_HORARIA)"),
    ] = None,
    hasta: Annotated[
        Hasta | None, Query(description="fecha_creacion <= hasta (AAAA-MM-DD incluye todo ese día)")
    ] = None,
    incluir_eliminados: Annotated[bool, Query(description="Incluir los eliminados por la retención")] = False,
) -> dict[str, Any]:
    tz = _runtime(request).settings.tz
    desde = desde.replace(tzinfo=tz) if desde is not None and desde.tzinfo is None else desde
    hasta = hasta.replace(tzinfo=tz) if hasta is not None and hasta.tzinfo is None else hasta
    if desde is not None and hasta is not None and desde > hasta:
        raise Invalido("Datos inválidos: parámetro.desde debe ser anterior o igual a hasta")
    items, total = queries.listar(
        session,
        pagina.offset,
        pagina.limit,
        tipo=tipo,
        estado=estado,
        desde=desde,
        hasta=hasta,
        incluir_eliminados=incluir_eliminados,
    )
    return {"total": total, "offset": pagina.offset, "limit": pagina.limit, "items": items}


# ------------------------------------------------------------------ limpiar


@router.post(
    "/limpiar",
    response_model=LimpiezaBackups,
    responses=_errores(409),
    summary="Aplicar ahora la retención (BACKUP_RETENTION_DAYS)",
    description="Borra los backups vencidos (nunca el último completo ni uno del que dependa un diferencial) y dice cuáles. Solo ADMIN.",
)
def limpiar(request: Request, _: AdminUser) -> dict[str, Any]:
    servicio = _servicio(request)
    try:
        resultado = servicio.cleanup()
    except DomainError:
        raise
    except (SQLAlchemyError, psycopg.OperationalError):
        raise NoDisponible("Base de datos no disponible; no se pudo aplicar la retención") from None
    except OSError as exc:
        raise NoDisponible(f"El directorio de backups no está disponible: {exc.strerror or exc}") from None
    return {
        "dias_retencion": servicio.settings.BACKUP_RETENTION_DAYS,
        "ids_eliminados": [r.id_backup for r in resultado.eliminados],
        "eliminados": [
            {
                "id_backup": r.id_backup,
                "tipo": r.tipo,
                "nombre_archivo": r.nombre_archivo,
                "tamanio_bytes": r.tamanio_bytes,
                "fecha_creacion": r.fecha_creacion,
            }
            for r in resultado.eliminados
        ],
        "bytes_liberados": resultado.bytes_liberados,
        "bytes_liberados_legible": human_size(resultado.bytes_liberados),
        "conservados_por_dependencia": resultado.conservados_por_dependencia,
        "temporales_borrados": resultado.temporales_borrados,
    }


# ------------------------------------------------------------------ un backup


@router.get(
    "/{id_backup}",
    response_model=BackupDetalle,
    responses=_errores(404, 422),
    summary="Un backup; un diferencial trae su completo base en `base`",
    description="Un backup del catálogo con su completo base y sus diferenciales. Solo ADMIN.",
)
def obtener(id_backup: Id, request: Request, session: SessionDep, _: AdminUser) -> dict[str, Any]:
    servicio = _servicio(request)
    return _detalle(session, servicio, servicio.get(session, id_backup))


def _comprobar_descargable(servicio: BackupService, row: HistorialBackup) -> Path:
    """El archivo de un backup que se puede entregar; si no, 410 o 409 con el motivo."""
    ident = f"El backup {row.id_backup} ({row.nombre_archivo})"
    if row.eliminado:
        cuando = f" el {row.fecha_eliminacion:%Y-%m-%d %H:%M}" if row.fecha_eliminacion else ""
        raise Desaparecido(
            f"{ident} fue eliminado{cuando} por la política de retención: su archivo ya no existe"
        )
    if row.estado == "EN_PROCESO":
        raise Conflicto(
            f"{ident} aún está en proceso: espere a que termine (consulte GET {PREFIJO}/{row.id_backup})"
        )
    if row.estado != "COMPLETADO":
        raise Conflicto(f"{ident} terminó con error y no tiene archivo: {row.mensaje_error or 'sin detalle'}")
    if not row.hash_md5:
        raise Conflicto(f"{ident} no tiene MD5 en el catálogo: no se puede verificar el archivo")
    return servicio.file_path(row.nombre_archivo)  # nombre validado; la ruta no toca el disco


def _abrir(path: Path, row: HistorialBackup) -> IO[bytes]:
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise Desaparecido(
            f"El archivo {row.nombre_archivo} del backup {row.id_backup} ya no está en el directorio de backups "
            "(se borró o movió fuera del sistema)"
        ) from None
    except OSError as exc:
        raise NoDisponible(
            f"No se pudo leer el archivo {row.nombre_archivo}: {exc.strerror or exc}"
        ) from None
    try:
        size = os.fstat(fh.fileno()).st_size
        if size != row.tamanio_bytes:
            raise Conflicto(
                f"El archivo está dañado: mide {size} bytes y el catálogo dice {row.tamanio_bytes} "
                f"(backup {row.id_backup}, {row.nombre_archivo})"
            )
    except BaseException:
        fh.close()
        raise
    return fh


def _verificar_md5(md5: str, row: HistorialBackup) -> None:
    if md5 != row.hash_md5:
        raise Conflicto(
            f"El archivo está dañado: MD5 no coincide (catálogo {row.hash_md5}, archivo {md5}; "
            f"backup {row.id_backup}, {row.nombre_archivo})"
        )


def _enviar_archivo(fh: IO[bytes], size: int) -> Iterator[bytes]:
    try:
        restante = size
        while restante > 0:
            chunk = fh.read(min(CHUNK, restante))
            if not chunk:
                break
            restante -= len(chunk)
            yield chunk
    finally:
        fh.close()


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
def descargar(id_backup: Id, request: Request, session: SessionDep, _: AdminUser) -> StreamingResponse:
    servicio = _servicio(request)
    row = servicio.get(session, id_backup)
    path = _comprobar_descargable(servicio, row)
    fh = _abrir(path, row)
    try:
        digest = hashlib.md5()
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
        _verificar_md5(digest.hexdigest(), row)
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    size = int(row.tamanio_bytes or 0)
    headers = {
        "Content-Disposition": f'attachment; filename="{row.nombre_archivo}"',
        "Content-Length": str(size),
        "X-Checksum-MD5": digest.hexdigest(),
        "Content-MD5": base64.b64encode(digest.digest()).decode("ascii"),
        "ETag": f'"{digest.hexdigest()}"',
        "Cache-Control": "no-store",
    }
    session.close()  # la descarga puede durar: no retener una conexión
    log.info("Backup %s descargado (%s)", row.id_backup, row.nombre_archivo)
    return StreamingResponse(_enviar_archivo(fh, size), media_type="application/gzip", headers=headers)


@router.post(
    "/{id_backup}/enviar-email",
    response_model=EnvioEmail,
    responses=_errores(404, 409, 410, 413, 422, 502, 503),
    summary="Enviar el backup por email como adjunto (SMTP)",
    description="Envía el archivo por SMTP a email_destino. Solo ADMIN.",
)
def enviar_email(
    id_backup: Id, datos: EnviarEmail, request: Request, session: SessionDep, user: AdminUser
) -> dict[str, Any]:
    if datos.id_backup is not None and datos.id_backup != id_backup:
        raise Invalido(
            f"Datos inválidos: cuerpo.id_backup ({datos.id_backup}) no coincide con el id de la ruta ({id_backup})"
        )
    servicio = _servicio(request)
    settings = servicio.settings
    row = servicio.get(session, id_backup)
    correo.remitente(settings)  # 503 si no está configurado, antes de leer nada
    path = _comprobar_descargable(servicio, row)
    limite = int(settings.EMAIL_ADJUNTO_MAX_MB * 1024 * 1024)
    if (row.tamanio_bytes or 0) > limite:
        raise DemasiadoGrande(
            f"El backup {row.id_backup} pesa {row.tamanio_legible} y el límite para adjuntos es "
            f"{settings.EMAIL_ADJUNTO_MAX_MB:g} MB (EMAIL_ADJUNTO_MAX_MB): descárguelo con "
            f"GET {PREFIJO}/{row.id_backup}/descargar"
        )
    with _abrir(path, row) as fh:
        contenido = fh.read(limite + 1)
    md5 = hashlib.md5(contenido).hexdigest()
    _verificar_md5(md5, row)
    base = session.get(HistorialBackup, row.id_backup_base) if row.id_backup_base else None
    mensaje = correo.construir_mensaje(settings, row, datos.email_destino, contenido, md5, base)
    session.close()  # el envío puede tardar SMTP_TIMEOUT: no retener una conexión
    correo.enviar(settings, mensaje, datos.email_destino)
    log.info(
        "Backup %s (%s) enviado por email a %s por %s",
        row.id_backup,
        row.nombre_archivo,
        datos.email_destino,
        user.nombre_usuario,
    )
    return {
        "enviado": True,
        "id_backup": row.id_backup,
        "nombre_archivo": row.nombre_archivo,
        "email_destino": datos.email_destino,
        "tamanio_bytes": len(contenido),
        "hash_md5": md5,
        "servidor_smtp": correo.servidor(settings),
        "fecha_envio": datetime.now(settings.tz),
    }
