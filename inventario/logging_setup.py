"""Los archivos de log: los cuatro del plan (app.log, error.log, health.log, sesiones.log) y
acceso.log (una línea por petición HTTP, fuera de app.log para que este cuente lo que hizo el servicio).

Cada línea empieza con la hora ISO 8601 con su desfase, en ZONA_HORARIA (la de los jobs y la API):
`2025-11-25T03:00:00.125-06:00`.

Los archivos rotados llevan su fecha (`app.log.2025-11-25`); una segunda rotación el mismo día
recibe `.1`, `.2`... y nunca pisa a la anterior. Comprimir y borrar lo hace `logs_maintenance`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from io import TextIOWrapper
from logging.handlers import (
    RotatingFileHandler,
    TimedRotatingFileHandler,
    WatchedFileHandler,
)
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from inventario.permisos import PRIVATE_FILE, private_dir

LOG_FILES = ("app.log", "error.log", "health.log", "sesiones.log", "acceso.log")
FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
# Con varios procesos (`serve --workers N`) escribiendo los mismos archivos: quién escribió cada línea.
FORMAT_PID = "%(asctime)s %(levelname)s [%(name)s] [pid %(process)d] %(message)s"
ACCESS_LOGGER = "uvicorn.access"
APP_MAX_BYTES = 10 * 1024 * 1024

# Todas las expresiones son lineales en el largo de la línea (un atacante elige la URL que se
# registra): ningún patrón empieza con un cuantificador que pueda reintentarse en cada posición
# (se anclan con una mirada atrás al inicio de su racha de caracteres) y los cuantificadores son
# posesivos (`++`, `*+`), sin retroceso.
_BEARER = re.compile(r"(?i)(bearer\s++)[A-Za-z0-9\-_\.=~+/]++")
# `nombre=` / `"nombre": ` / `nombre: `; si el nombre es de un secreto, su valor se borra.
_KEY_SEP = re.compile(r"(?<![\w-])([\w-]++)([\"']?\s*+[=:]\s*+)")
# Nombres de campo cuyo valor es secreto (también con prefijo o sufijo: hash_password, SECRET_KEY,
# access_token...).
_SECRET_NAME = re.compile(r"(?i)password|passwd|contrase(?:ñ|n)a|secret|token|api[_-]?key")
# Valor entre comillas (una contraseña puede tener espacios; sin comilla de cierre, hasta el fin
# de la línea) o hasta el primer separador.
_VALUE = re.compile(r"\"[^\"\n]*+\"?|'[^'\n]*+'?|[^\s\"',;}&]++")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]++:)[^@/\s]++(@)")
# Un JWT suelto (p. ej. dentro de un mensaje de error), aunque no lleve nombre de campo.
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]++\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]++")
# Tope de un mensaje en el log (después de limpiarlo): una URL o cabecera enorme no llena el disco.
MAX_MESSAGE = 8192


def _redact_pairs(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _KEY_SEP.finditer(text):
        # Un nombre dentro del valor ya borrado no cuenta; los nombres no secretos tampoco.
        if match.start() < last or not _SECRET_NAME.search(match.group(1)):
            continue
        value = _VALUE.match(text, match.end())
        if value is None:
            continue
        quote = value.group()[0] if value.group()[0] in "\"'" else ""
        out += [text[last : match.end()], f"{quote}***{quote}"]
        last = value.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


# Secretos sin nombre de campo que los delate (el token en la ruta de un webhook, p. ej.): quien
# los conoce los registra y ninguna línea de log los escribe, venga de donde venga (urllib3...).
# Una tupla que se reemplaza entera: los hilos que escriben logs nunca la ven a medio cambiar.
_literal_secrets: tuple[str, ...] = ()
_MIN_LITERAL = 4


def register_secret(value: str) -> None:
    global _literal_secrets
    if len(value) >= _MIN_LITERAL and value not in _literal_secrets:
        _literal_secrets = tuple(sorted({*_literal_secrets, value}, key=len, reverse=True))


def redact(text: str) -> str:
    # str.replace es lineal: los secretos registrados no reabren el coste cuadrático.
    for secret in _literal_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    text = _redact_pairs(text)
    text = _URL_PASSWORD.sub(r"\1***\2", text)
    return _JWT.sub("***", text)


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} caracteres omitidos)"


class RedactSecrets(logging.Filter):
    """Último filtro antes del archivo: ninguna contraseña, token ni URL con clave se escribe.

    Limpia también la traza de las excepciones: sus mensajes suelen llevar parámetros y URLs.
    """

    _traceback_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = bounded(redact(message))
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatter.format() reutiliza exc_text si ya está: lo dejamos calculado y limpio.
            record.exc_text = self._traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class ZonedFormatter(logging.Formatter):
    """La hora de cada línea en ISO 8601 con desfase, en la zona del servicio."""

    def __init__(self, fmt: str, zone: ZoneInfo) -> None:
        super().__init__(fmt)
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="milliseconds")


def unique_name(path: Path) -> Path:
    """`path` si no existe; si no, `path.1`, `path.2`... (también si ya está comprimido)."""
    candidate, n = path, 0
    while candidate.exists() or Path(f"{candidate}.gz").exists():
        n += 1
        candidate = Path(f"{path}.{n}")
    return candidate


def _open_private(handler: logging.FileHandler) -> None:
    # Los logs llevan nombres, direcciones y errores: 0600 aunque el umask del proceso sea 022
    # (el servicio y la CLI ya usan 077; esto cubre a quien configure el logging por su cuenta).
    os.chmod(handler.baseFilename, PRIVATE_FILE)


class DatedSizeRotatingHandler(RotatingFileHandler):
    """Rota por tamaño y nombra el archivo rotado con la fecha del día."""

    def _open(self) -> TextIOWrapper:
        stream = super()._open()
        _open_private(self)
        return stream

    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None
        base = Path(self.baseFilename)
        if base.exists() and base.stat().st_size > 0:
            os.rename(base, unique_name(Path(f"{base}.{date.today().isoformat()}")))
        if not self.delay:
            self.stream = self._open()


class DatedDailyHandler(TimedRotatingFileHandler):
    """Rota a medianoche a `nombre.AAAA-MM-DD` (la fecha de lo que contiene), sin pisar nada."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename, when="midnight", backupCount=0, encoding="utf-8", delay=True)
        self.namer = lambda name: str(unique_name(Path(name)))

    def _open(self) -> TextIOWrapper:
        stream = super()._open()
        _open_private(self)
        return stream

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        # Con delay=True y un archivo viejo de un día anterior, rotamos al primer registro.
        return int(time.time()) >= self.rolloverAt


class FollowingHandler(WatchedFileHandler):
    """Para los workers de `serve --workers N`: escribe al final del archivo sin rotarlo nunca (lo
    rota solo el proceso principal, `rotate_due`) y lo reabre cuando el principal lo rotó. Si cada
    proceso rotara por su cuenta, dos procesos renombrarían el mismo archivo dos veces."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename, encoding="utf-8", delay=True)

    def _open(self) -> TextIOWrapper:
        stream = super()._open()
        _open_private(self)
        return stream


_configured: list[logging.Handler] = []

# "unico": un solo proceso (rota sus archivos al escribir); "principal" y "worker": `serve --workers N`.
ModoLog = Literal["unico", "principal", "worker"]


def rotate_due() -> None:
    """El proceso principal de `serve --workers N` escribe poco (no atiende HTTP): rota a su hora
    (medianoche) o por tamaño lo que escriben los workers aunque él no escriba nada."""
    probe = logging.makeLogRecord({"msg": ""})
    for handler in list(_configured):
        if isinstance(handler, RotatingFileHandler | TimedRotatingFileHandler):
            handler.acquire()
            try:
                if handler.shouldRollover(probe):
                    handler.doRollover()
            except OSError:
                pass  # se reintenta en la próxima revisión; escribir sigue funcionando
            finally:
                handler.release()


_OWN_FILES = (
    ("inventario.health", "health.log"),
    ("inventario.sesiones", "sesiones.log"),
    (ACCESS_LOGGER, "acceso.log"),
)


def setup_logging(logs_dir: Path, level: str = "INFO", zona: str = "UTC", modo: ModoLog = "unico") -> None:
    """Configura los archivos; idempotente (vuelve a configurar si cambia la carpeta)."""
    for handler in _configured:
        for name in ("", *(logger for logger, _ in _OWN_FILES)):
            logging.getLogger(name).removeHandler(handler)
        handler.close()
    _configured.clear()
    private_dir(logs_dir)
    formatter = ZonedFormatter(FORMAT if modo == "unico" else FORMAT_PID, ZoneInfo(zona))
    redactor = RedactSecrets()

    def prepared(handler: logging.Handler, handler_level: int = logging.NOTSET) -> logging.Handler:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        handler.setLevel(handler_level)
        _configured.append(handler)
        return handler

    def daily(path: Path) -> logging.Handler:
        return FollowingHandler(str(path)) if modo == "worker" else DatedDailyHandler(str(path))

    root = logging.getLogger()
    root.setLevel(level)
    app_log = logs_dir / "app.log"
    root.addHandler(
        prepared(
            FollowingHandler(str(app_log))
            if modo == "worker"
            else DatedSizeRotatingHandler(
                str(app_log), maxBytes=APP_MAX_BYTES, backupCount=0, encoding="utf-8"
            )
        )
    )
    root.addHandler(prepared(daily(logs_dir / "error.log"), logging.ERROR))
    # Lo informativo de Alembic y APScheduler sale en inglés y en varias líneas ("Context impl
    # PostgresqlImpl.", "Adding job tentatively..."): en app.log solo sus avisos y errores; lo que
    # importa (migraciones aplicadas, corridas de jobs) lo escribimos nosotros, en español.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, filename in _OWN_FILES:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(prepared(daily(logs_dir / filename)))


QUIET_LIBRARIES = ("alembic", "apscheduler")


@contextmanager
def isolated_logging() -> Iterator[None]:
    """Aparta lo que configuró `setup_logging` y lo devuelve al salir, cerrando lo que se haya
    configurado dentro (pruebas que arrancan la aplicación varias veces en un proceso). Los
    handlers ajenos (los de pytest) no se tocan."""
    loggers = [
        logging.getLogger(name) for name in ("", *(logger for logger, _ in _OWN_FILES), *QUIET_LIBRARIES)
    ]
    levels = [(logger, logger.level, logger.propagate) for logger in loggers]
    attached = [(lg, h) for lg in loggers for h in lg.handlers if h in _configured]
    for logger, handler in attached:
        logger.removeHandler(handler)
    saved = list(_configured)
    _configured.clear()  # que un setup_logging() de dentro no cierre los de fuera
    try:
        yield
    finally:
        for handler in _configured:
            for logger in loggers:
                logger.removeHandler(handler)
            handler.close()
        _configured[:] = saved
        for logger, handler in attached:
            logger.addHandler(handler)
        for logger, level, propagate in levels:
            logger.setLevel(level)
            logger.propagate = propagate
