"""La única puerta de la consola a los backups y al planificador.

Todo pasa por `BackupService` (el de la aplicación, `app.state.backup_service`, que espera a sus
backups en segundo plano al cerrar) y por el `JobsService` del planificador: la consola deja
exactamente los mismos registros que la API (logs, notificaciones, `ejecutado_por`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from inventario.errors import DomainError, Invalido
from inventario.fechas import RangoFechas
from inventario.modules.backup import queries, restore
from inventario.modules.backup import router as backup_api
from inventario.modules.backup.exceptions import BackupError, RestoreError
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.model import EstadoBackup, HistorialBackup
from inventario.modules.backup.schemas import EnviarEmail
from inventario.modules.backup.service import BackupService
from inventario.modules.planificador import router as jobs_api
from inventario.modules.planificador.model import EjecucionJob
from inventario.modules.usuarios.model import Usuario
from inventario.pagination import Pagina, page

estadisticas_backup = queries.estadisticas  # contadores del Panel, una consulta


def listar_backups(
    session: Session,
    offset: int,
    limit: int,
    *,
    tipo: str | None = None,
    estado: str | None = None,
    fechas: RangoFechas | None = None,
    incluir_eliminados: bool = False,
) -> tuple[list[HistorialBackup], int]:
    """Una página del catálogo (del más nuevo al más viejo) y el total."""
    stmt = queries.listar(tipo=tipo, estado=estado, fechas=fechas, incluir_eliminados=incluir_eliminados)
    datos = page(session, stmt, Pagina(offset=offset, limit=limit))
    return datos["items"], datos["total"]


def _servicio(request: Request) -> BackupService:
    servicio: BackupService = request.app.state.backup_service
    return servicio


def obtener_backup(request: Request, session: Session, id_backup: int) -> HistorialBackup:
    return _servicio(request).get(session, id_backup)


def iniciar_backup(request: Request, tipo: str, usuario: Usuario) -> int:
    """Lanza el backup en segundo plano (como `POST /ejecutar` con 202) y devuelve su id."""
    try:
        return _servicio(request).start_in_background(tipo, usuario.nombre_usuario)
    except BackupError as exc:
        sufijo = f" (backup n.º {exc.id_backup})" if exc.id_backup is not None else ""
        exc.mensaje = f"El backup no pudo empezar: {exc.mensaje}{sufijo}"
        raise


def descargar(request: Request, id_backup: int, usuario: Usuario) -> StreamingResponse:
    """El archivo con el MD5 verificado antes de enviarlo: la misma respuesta (cabeceras, 409/410)
    que `GET /api/v1/backup/{id}/descargar`."""
    return backup_api.download_response(_servicio(request).open_download(id_backup))


def enviar_email(request: Request, id_backup: int, destino: str, usuario: Usuario) -> dict[str, Any]:
    try:
        datos = EnviarEmail(email_destino=destino)
    except ValidationError:
        raise Invalido(f"La dirección de correo {destino!r} no es válida") from None
    return _servicio(request).send_email(id_backup, datos.email_destino, usuario.nombre_usuario)


def verificar(request: Request, id_backup: int) -> str:
    """MD5, gzip y completo base, como `inventario backup verificar ID`. Devuelve el resumen."""
    try:
        cadena = restore.verified_chain(_servicio(request).repo, str(id_backup))
    except RestoreError as exc:
        raise DomainError(f"La verificación falló: {exc.mensaje}") from None
    return "Verificado: " + ", ".join(
        f"{e.path.name} (MD5 {e.manifest.hash_md5}, gzip íntegro)" for e in cadena
    )


def manifiesto(request: Request, row: HistorialBackup) -> Manifiesto | None:
    """El manifiesto junto al archivo, o None si ya no está (backup eliminado o fallido)."""
    if row.estado != EstadoBackup.COMPLETADO or row.eliminado:
        return None
    return _servicio(request).repo.manifest(row.nombre_archivo)


def comando_restaurar(row: HistorialBackup) -> str:
    """La orden exacta para restaurar (con el servicio detenido): restaurar es cosa de la CLI.
    Con la ruta del entorno: `make run` no pone `inventario` en el PATH."""
    return f".venv/bin/inventario backup restaurar {row.id_backup}"


# ------------------------------------------------------------------ planificador


def estado_jobs(request: Request) -> list[dict[str, Any]]:
    servicio = jobs_api.jobs_service(request)
    return servicio.status(datetime.now(servicio.settings.tz), desde=jobs_api.scheduler_since(request))


def ejecutar_job(request: Request, job_id: str, usuario: Usuario) -> EjecucionJob:
    """Corre el job ahora, con el mismo registro (`ejecutado_por`) que `POST /jobs/{id}/ejecutar`."""
    return jobs_api.jobs_service(request).run_now(job_id, ejecutado_por=usuario.nombre_usuario)


def info_planificador(request: Request) -> Any:
    return getattr(request.app.state, "scheduler_info", None)
