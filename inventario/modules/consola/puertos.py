"""La única puerta de la consola a los backups y al planificador.

Hasta que `BackupService` sea la única entrada a los backups (issue 10), las operaciones que hoy
viven en el router de la API (descarga verificada, envío por email, lanzar en segundo plano) se
llaman desde aquí, para que la consola deje exactamente los mismos registros que la API y para que
adaptarse al cambio toque un solo archivo.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from inventario.errors import DomainError, Invalido, NoDisponible
from inventario.modules.backup import queries, restore
from inventario.modules.backup import router as backup_api
from inventario.modules.backup.files import manifest_path, read_manifest
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.schemas import EnviarEmail, Manifiesto
from inventario.modules.backup.service import BackupError, BackupService
from inventario.modules.jobs import router as jobs_api
from inventario.modules.jobs.model import EjecucionJob
from inventario.modules.usuarios.model import Usuario

estadisticas_backup = queries.estadisticas  # contadores del Panel, una consulta
listar_backups = queries.listar  # catálogo con filtros, del más nuevo al más viejo


def _servicio(request: Request) -> BackupService:
    return BackupService(request.app.state.runtime, notifier=notify)


def obtener_backup(request: Request, session: Session, id_backup: int) -> HistorialBackup:
    return _servicio(request).get(session, id_backup)


def iniciar_backup(request: Request, tipo: str, usuario: Usuario) -> int:
    """Lanza el backup en segundo plano (como `POST /ejecutar` con 202) y devuelve su id."""
    try:
        iniciado = _servicio(request).start(tipo, usuario.nombre_usuario)  # type: ignore[arg-type]
    except BackupError as exc:
        sufijo = f" (backup n.º {exc.id_backup})" if exc.id_backup is not None else ""
        raise NoDisponible(f"El backup no pudo empezar: {exc.mensaje}{sufijo}") from None
    backup_api._terminar_en_segundo_plano(request.app, iniciado)
    return iniciado.id_backup


def descargar(request: Request, session: Session, id_backup: int, usuario: Usuario) -> StreamingResponse:
    """El archivo con el MD5 verificado antes de enviarlo; los mismos errores (409/410) que la API."""
    return backup_api.descargar(id_backup, request, session, usuario)


def enviar_email(
    request: Request, session: Session, id_backup: int, destino: str, usuario: Usuario
) -> dict[str, Any]:
    try:
        datos = EnviarEmail(email_destino=destino)
    except ValidationError:
        raise Invalido(f"La dirección de correo {destino!r} no es válida") from None
    return backup_api.enviar_email(id_backup, datos, request, session, usuario)


def verificar(request: Request, id_backup: int) -> str:
    """MD5, gzip y completo base, como `inventario backup verificar ID`. Devuelve el resumen."""
    directorio = request.app.state.runtime.settings.backup_dir
    try:
        cadena = restore.resolve_chain(directorio, str(id_backup))
        for eslabon in cadena:
            restore.verify_link(eslabon)
    except restore.RestoreError as exc:
        raise DomainError(f"La verificación falló: {exc}") from None
    return "Verificado: " + ", ".join(
        f"{e.path.name} (MD5 {e.manifest.hash_md5}, gzip íntegro)" for e in cadena
    )


def manifiesto(request: Request, row: HistorialBackup) -> Manifiesto | None:
    """El manifiesto junto al archivo, o None si ya no está (backup eliminado o fallido)."""
    if row.estado != "COMPLETADO" or row.eliminado:
        return None
    try:
        ruta = manifest_path(_servicio(request).file_path(row.nombre_archivo))
        return read_manifest(ruta)
    except (OSError, ValueError, DomainError):
        return None


def comando_restaurar(row: HistorialBackup) -> str:
    """La orden exacta para restaurar (con el servicio detenido): restaurar es cosa de la CLI."""
    return f"inventario backup restaurar {row.id_backup}"


# ------------------------------------------------------------------ planificador


def estado_jobs(request: Request) -> list[dict[str, Any]]:
    servicio = jobs_api._service(request)
    return servicio.status(datetime.now(servicio.settings.tz), desde=jobs_api._desde(request))


def ejecutar_job(request: Request, job_id: str, usuario: Usuario) -> EjecucionJob:
    """Corre el job ahora, con el mismo registro (`ejecutado_por`) que `POST /jobs/{id}/ejecutar`."""
    return jobs_api._service(request).run_now(job_id, ejecutado_por=usuario.nombre_usuario)


def info_planificador(request: Request) -> Any:
    return getattr(request.app.state, "scheduler_info", None)
