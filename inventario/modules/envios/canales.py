"""Los canales configurados y cómo se entrega un mensaje en cada uno. Sin base de datos ni HTTP.

- `email`: SMTP_* a NOTIFICACIONES_EMAIL (un mensaje a todas las direcciones).
- una URL de apprise por canal (`NOTIFICACIONES_URLS`), identificado por esquema y un resumen de la
  URL: la misma URL es el mismo canal aunque cambie el orden, y la URL no aparece en ningún lado.
- `ping`: BACKUP_PING_URL (o su variante de fallo); solo lo usan los mensajes PING.

Un envío fallido lanza `EnvioFallido` con un texto en español sin secretos.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Literal
from urllib.parse import urlsplit

from inventario.config import Settings
from inventario.logging_setup import redact, register_secret

log = logging.getLogger(__name__)

PING_TIMEOUT = 10.0
ERROR_MAX = 1000
EMAIL, PING = "email", "ping"

# apprise registra URLs y respuestas de los servicios: a sus propios manejadores (LogCapture),
# nunca a los archivos de log del servicio.
logging.getLogger("apprise").propagate = False
_apprise_lock = threading.Lock()  # LogCapture es global al logger: un envío apprise a la vez
# Esquemas en los que lo que sigue a "://" es de verdad un servidor (se puede mostrar).
_ESQUEMAS_CON_SERVIDOR = (
    "json",
    "jsons",
    "xml",
    "xmls",
    "form",
    "forms",
    "mailto",
    "mailtos",
    "ntfy",
    "ntfys",
)


class EnvioFallido(Exception):
    def __init__(self, mensaje: str) -> None:
        super().__init__(mensaje)
        self.mensaje = mensaje


@dataclass(frozen=True)
class Canal:
    id: str  # estable y sin secretos: "email", "json:1a2b3c4d5e", "ping"
    clase: Literal["email", "apprise", "ping"]
    destino: str  # para mostrar: direcciones o esquema://servidor con las claves tapadas
    url: str | None = None  # la URL real (apprise); nunca se muestra ni se guarda

    def __repr__(self) -> str:  # la URL no sale ni en una traza
        return f"Canal({self.id!r}, {self.destino!r})"


def _urls(settings: Settings) -> list[str]:
    if settings.NOTIFICACIONES_URLS is None:
        return []
    from apprise.utils.parse import parse_urls

    return [u.strip() for u in parse_urls(settings.NOTIFICACIONES_URLS.get_secret_value()) if u.strip()]


def _apprise_canal(url: str) -> Canal:
    import apprise

    scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin:
        privada = str(plugin.url(privacy=True))
        # Solo esquema://servidor: la ruta de un webhook suele ser el token.
        parts = urlsplit(privada)
        destino = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{scheme}://"
    else:
        destino = f"{scheme}:// (URL no reconocida por apprise)"
    # Ninguna línea de log los escribe, ni las de urllib3 en DEBUG que llevan la ruta del webhook.
    for trozo in _trozos_secretos(url):
        register_secret(trozo)
    return Canal(f"{scheme}:{digest}", "apprise", destino, url)


def canales(settings: Settings) -> list[Canal]:
    """Los canales de notificaciones configurados (sin el ping)."""
    result = []
    if settings.NOTIFICACIONES_EMAIL:
        result.append(Canal(EMAIL, "email", settings.NOTIFICACIONES_EMAIL))
    seen = set()
    for url in _urls(settings):
        canal = _apprise_canal(url)
        if canal.id not in seen:
            seen.add(canal.id)
            result.append(canal)
    return result


def canal_por_id(settings: Settings, canal_id: str) -> Canal | None:
    if canal_id == PING:
        return Canal(PING, "ping", "BACKUP_PING_URL") if settings.BACKUP_PING_URL else None
    return next((c for c in canales(settings) if c.id == canal_id), None)


# ---------------------------------------------------------------------------------------- entrega
def entregar(settings: Settings, canal: Canal, asunto: str, cuerpo: str, semaforo: str) -> None:
    """Entrega un mensaje en un canal, o lanza `EnvioFallido`."""
    if canal.clase == "email":
        _email(settings, asunto, cuerpo)
    elif canal.clase == "apprise":
        assert canal.url is not None
        _apprise(canal, asunto, cuerpo, semaforo)
    else:
        _ping(settings, exito=cuerpo == "OK")


def _email(settings: Settings, asunto: str, cuerpo: str) -> None:
    from inventario.modules.backup.email import EmailNoConfigurado, SmtpError, send, sender

    destinos = [d.strip() for d in (settings.NOTIFICACIONES_EMAIL or "").split(",") if d.strip()]
    try:
        origen = sender(settings)
    except EmailNoConfigurado:
        raise EnvioFallido(
            "Falta configurar el servidor de correo: defina SMTP_HOST y SMTP_REMITENTE (o un SMTP_USUARIO "
            "que sea una dirección)"
        ) from None
    msg = EmailMessage()
    msg["Subject"] = asunto
    msg["From"] = origen
    msg["To"] = ", ".join(destinos)
    msg["Date"] = format_datetime(datetime.now(settings.tz))
    msg["Message-ID"] = make_msgid("aviso", domain=origen.rsplit("@", 1)[-1].strip("> ") or None)
    msg.set_content(cuerpo)
    try:
        send(settings, msg, destinos)
    except SmtpError as exc:
        raise EnvioFallido(exc.mensaje) from None


def _trozos_secretos(url: str) -> list[str]:
    """Los trozos de una URL de apprise que pueden ser secretos: la URL, la contraseña, los valores
    de la consulta y los segmentos largos de la ruta (el token de un webhook suele ir ahí)."""
    parts = urlsplit(url)
    trozos = [url, parts.password or ""]
    # La ruta entera (urllib3 la escribe en DEBUG) si es larga: en un push de Uptime Kuma el token
    # es corto ("/api/push/AbC123"). Una ruta corta ("/api") taparía media línea de cualquier log.
    trozos += [parts.path] if len(parts.path) >= 10 else []
    trozos += [parts.query] if len(parts.query) >= 8 else []
    trozos += [p for p in parts.path.split("/") if len(p) >= 8]
    trozos += [v for kv in parts.query.split("&") for v in kv.split("=")[1:] if len(v) >= 6]
    if parts.netloc and parts.scheme not in _ESQUEMAS_CON_SERVIDOR:
        # En telegram, discord, slack... lo que va tras "://" es el token, no un servidor.
        trozos.append(parts.netloc)
    return [t for t in trozos if t]


def _tapar(texto: str, url: str) -> str:
    """Quita de un texto de apprise todo trozo de la URL que pueda ser secreto."""
    for trozo in sorted(set(_trozos_secretos(url)), key=len, reverse=True):
        texto = texto.replace(trozo, "***")
    return redact(texto)


def _apprise(canal: Canal, asunto: str, cuerpo: str, semaforo: str) -> None:
    import apprise

    assert canal.url is not None
    tipo = {"ROJO": apprise.NotifyType.FAILURE, "AMARILLO": apprise.NotifyType.WARNING}.get(
        semaforo, apprise.NotifyType.INFO
    )
    aobj = apprise.Apprise()
    if not aobj.add(canal.url):
        raise EnvioFallido(f"La URL del canal {canal.destino} no es una URL válida de apprise")
    logging.getLogger("apprise").propagate = False  # por si otra configuración de logging lo cambió
    with _apprise_lock, apprise.LogCapture(level=logging.WARNING) as captured:
        ok = aobj.notify(body=cuerpo, title=asunto, notify_type=tipo)
        salida = captured.getvalue()
    if not ok:
        detalle = " ".join(line.split(" - ", 2)[-1].strip() for line in salida.splitlines() if line.strip())
        detalle = _tapar(detalle, canal.url)[:ERROR_MAX] or "sin detalle"
        raise EnvioFallido(f"El canal {canal.destino} no aceptó el mensaje: {detalle}")


def ping_url(settings: Settings, exito: bool) -> str | None:
    if settings.BACKUP_PING_URL is None:
        return None
    base = settings.BACKUP_PING_URL.get_secret_value().strip()
    if exito:
        url = base
    elif settings.BACKUP_PING_URL_FALLO is not None:
        url = settings.BACKUP_PING_URL_FALLO.get_secret_value().strip()
    else:
        url = base.rstrip("/") + "/fail"
    for trozo in _trozos_secretos(url):  # el identificador del chequeo es la clave del ping
        register_secret(trozo)
    return url


def _ping(settings: Settings, *, exito: bool) -> None:
    url = ping_url(settings, exito)
    if url is None:
        raise EnvioFallido("BACKUP_PING_URL ya no está configurada")
    host = urlsplit(url).hostname or "?"
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "inventario"})
    try:
        with urllib.request.urlopen(request, timeout=PING_TIMEOUT) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise EnvioFallido(f"El servicio de ping {host} respondió {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EnvioFallido(
            f"No se pudo contactar al servicio de ping {host}: {_tapar(str(reason), url)}"
        ) from None


__all__ = ["EMAIL", "PING", "Canal", "EnvioFallido", "canal_por_id", "canales", "entregar", "ping_url"]
