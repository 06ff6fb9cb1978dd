"""Lo que el operador ve en la consola al arrancar: el aviso de inicio y, si algo falla, una línea
que dice qué falló y qué hacer (la traza completa va a `error.log`). Lo usan `serve` y la CLI."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from inventario.config import Settings
from inventario.errors import cantidad
from inventario.logging_setup import redact
from inventario.postgres import without_password

if TYPE_CHECKING:
    from inventario.runtime import Runtime


class ArranqueError(Exception):
    """El servicio no puede arrancar; el mensaje dice qué hacer."""


def reservar_puerto(host: str, port: int) -> socket.socket:
    """El socket de escucha, abierto antes de arrancar nada (la base, el planificador): si el
    puerto está ocupado se sabe al instante y no se arranca un segundo PostgreSQL para nada."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, no 0: asyncio solo pone TCP_NODELAY en las conexiones aceptadas de un socket
    # que lo declara; sin él, cada respuesta (cabeceras y cuerpo en dos escrituras) de una conexión
    # keep-alive esperaba el ACK retrasado del cliente: ~40 ms de más por petición.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ArranqueError(
                f"El puerto {port} de {host} ya está en uso: ¿ya hay un `inventario serve` corriendo? "
                f"Deténgalo, o arranque en otro puerto (PORT={port + 1} o --port {port + 1})."
            ) from None
        if exc.errno == errno.EACCES:
            raise ArranqueError(
                f"Sin permiso para escuchar en el puerto {port}: los menores que 1024 requieren root. "
                "Use un puerto mayor (PORT=8000)."
            ) from None
        raise ArranqueError(
            f"No se puede escuchar en {host}:{port} ({exc.strerror or exc}): HOST debe ser una dirección "
            "de esta máquina (127.0.0.1 solo local, 0.0.0.0 toda la red)."
        ) from None
    # Escuchando ya: una conexión que llega mientras arranca la base espera en la cola en vez de
    # ser rechazada (uvicorn atiende este mismo socket).
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def puertos_por_worker(sock: socket.socket, workers: int) -> list[socket.socket]:
    """Para `serve --workers N`: un socket de escucha por worker en el mismo puerto (SO_REUSEPORT),
    en lugar de `sock`, que se cierra. Con un socket compartido, el worker que despierta primero
    acepta de una vez todas las conexiones en cola: con clientes que mantienen la conexión abierta
    (keep-alive), casi toda la carga caía en un solo worker (978 de 1 000 peticiones). Con un socket
    por worker, el núcleo reparte las conexiones entre ellos.

    `sock` (sin SO_REUSEPORT) ya comprobó que el puerto estaba libre; mientras estos sockets vivan,
    un segundo `inventario serve` en el mismo puerto falla igual que con un solo proceso (un socket
    sin SO_REUSEPORT no puede unirse al grupo, y el núcleo solo admite en él al mismo usuario)."""
    host, port = sock.getsockname()[:2]
    family = sock.family
    sock.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            worker = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY: ver arriba
            sockets.append(worker)
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind((host, port))
            worker.listen(128)
            worker.set_inheritable(True)
    except OSError as exc:
        for worker in sockets:
            worker.close()
        raise ArranqueError(
            f"No se puede escuchar en {host}:{port} con {cantidad(workers, 'worker')}: {exc.strerror or exc}"
        ) from None
    return sockets


def url_sin_clave(url: URL) -> str:
    return without_password(url).render_as_string(hide_password=False)


def describir_base(runtime: Runtime) -> str:
    server = runtime.server
    if server.embedded:
        socket_dir = server.url.query.get("host", "")
        return (
            f"PostgreSQL embebido, datos en {runtime.settings.data_dir / 'pgdata'} (socket en {socket_dir}; "
            "`inventario db psql` para entrar)"
        )
    return f"PostgreSQL externo {url_sin_clave(server.url)}"


def aviso_inicio(runtime: Runtime, host: str, port: int, with_scheduler: bool, workers: int = 1) -> str:
    s = runtime.settings
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    base = f"http://{shown}:{port}"
    if with_scheduler:
        backups = "" if s.BACKUP_ENABLED else ", backups programados apagados (BACKUP_ENABLED)"
        planificador = (
            f"activo ({s.ZONA_HORARIA}): backup_diario {s.BACKUP_HOUR:02d}:{s.BACKUP_MINUTE:02d}, "
            + (
                f"backup_incremental cada {s.BACKUP_INCREMENTAL_MINUTOS} min, "
                if s.BACKUP_INCREMENTAL_MINUTOS
                else ""
            )
            + f"logs_maintenance {s.LOGS_HOUR:02d}:{s.LOGS_MINUTE:02d}, "
            f"alertas_diarias {s.ALERTAS_HOUR:02d}:{s.ALERTAS_MINUTE:02d}{backups}"
        )
    else:
        planificador = "apagado (--sin-scheduler: corra `inventario scheduler` aparte)"
    lines = [
        "Inventario en marcha",
        f"  Dirección:     {base}  (escucha en {host}:{port})",
        f"  Procesos:      {describir_procesos(workers)}",
        f"  Documentación: {base}/docs",
        f"  Consola web:   {base}/consola",
        f"  Base de datos: {describir_base(runtime)}",
        f"  Backups:       {s.backup_dir}",
        f"  Logs:          {s.logs_dir}  (app.log, error.log, acceso.log...)",
        f"  Planificador:  {planificador}",
        f"  Avisos:        {describir_avisos(s)}",
        "  Detener:       Ctrl+C (espera a que termine un backup en curso)",
    ]
    return "\n".join(lines)


def describir_procesos(workers: int) -> str:
    if workers == 1:
        return "1 worker (WORKERS o --workers para usar más núcleos)"
    return (
        f"{workers} workers atienden HTTP; el principal (pid {os.getpid()}) lleva la base, "
        "el planificador y los avisos"
    )


def describir_avisos(s: Settings) -> str:
    """Canales de avisos, ping y métricas, sin secretos (las URLs se muestran tapadas)."""
    from inventario.modules.envios.canales import canales

    destinos = [c.destino for c in canales(s)]
    partes = [", ".join(destinos) if destinos else "sin canales (NOTIFICACIONES_EMAIL / NOTIFICACIONES_URLS)"]
    if s.BACKUP_PING_URL is not None:
        partes.append("ping de backups configurado")
    if s.METRICAS_HABILITADAS:
        partes.append("métricas en /metrics" + (" con token" if s.METRICAS_TOKEN else " SIN token"))
    return "; ".join(partes)


def _primera_linea(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__


def describir_fallo(exc: BaseException, settings: Settings | None) -> str:
    """Una línea: qué falló y qué revisar. Sin secretos (la URL sale sin clave)."""
    from sqlalchemy.exc import OperationalError as SAOperationalError

    from inventario.postgres import PgToolsError

    error_log = f"{settings.logs_dir / 'error.log'}" if settings else "error.log"
    if isinstance(exc, ArranqueError | PgToolsError):
        return str(exc)
    if isinstance(exc, SAOperationalError) or exc.__class__.__name__ == "OperationalError":
        if settings is not None and settings.DATABASE_URL:
            from inventario.postgres import sqlalchemy_url

            where = url_sin_clave(sqlalchemy_url(settings.DATABASE_URL))
            hint = "Revise que ese PostgreSQL esté en marcha y que DATABASE_URL (servidor, usuario, clave) sea correcta."
        else:
            where = "el PostgreSQL embebido"
            hint = "Revise que el servicio siga en marcha y el detalle en " + error_log + "."
        from inventario.postgres import describe_connection_error

        return redact(f"No se pudo conectar con {where}: {describe_connection_error(exc)}. {hint}")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        target = exc.filename or "un archivo"
        return (
            f"Sin permiso para escribir en {target}. Revise el dueño y los permisos de DATA_PATH, "
            "BACKUP_PATH y LOGS_PATH (el usuario que corre el servicio debe poder escribir allí)."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"Disco lleno al escribir {exc.filename or ''}: libere espacio y vuelva a intentar."
    if isinstance(exc, OSError) and exc.filename:
        return (
            f"No se pudo usar {exc.filename} ({exc.strerror or exc}): revise DATA_PATH, BACKUP_PATH y "
            "LOGS_PATH (deben ser carpetas, o poder crearse, con permiso de escritura)."
        )
    if settings is not None and not settings.DATABASE_URL and "pgserver" in _modulos(exc):
        return redact(
            f"No arrancó el PostgreSQL embebido en {Path(settings.data_dir) / 'pgdata'}: {_primera_linea(exc)}. "
            f"Revise permisos y espacio de DATA_PATH; detalle en {error_log}."
        )
    return redact(f"{exc.__class__.__name__}: {_primera_linea(exc)}. Detalle en {error_log}.")


def _modulos(exc: BaseException) -> str:
    tb, names = exc.__traceback__, []
    while tb is not None:
        names.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return " ".join(names)
