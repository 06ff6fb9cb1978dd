"""Envío de un backup por email (SMTP con `smtplib`). Sin HTTP: los errores son de dominio.

- Sin `SMTP_HOST` (o sin remitente) → `EmailNoConfigurado` (503).
- Servidor inalcanzable, TLS fallido, credenciales o destinatario rechazados → `SmtpError` (502).
- La contraseña (`SMTP_PASSWORD`, SecretStr) solo se usa para `login()`: nunca va a un log ni a un
  mensaje de error.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from inventario.config import Settings
from inventario.errors import NoDisponible, ServicioExternoError
from inventario.modules.backup.model import HistorialBackup, TipoBackup

log = logging.getLogger(__name__)

MIME_GZIP = ("application", "gzip")


class EmailNoConfigurado(NoDisponible):
    def __init__(self, falta: str) -> None:
        super().__init__(
            f"El envío de backups por email no está configurado: falta {falta}. Defina SMTP_HOST, "
            "SMTP_PORT, SMTP_TLS, SMTP_REMITENTE (y SMTP_USUARIO/SMTP_PASSWORD si el servidor pide "
            "autenticación), o descargue el backup con GET /api/v1/backup/{id}/descargar"
        )


class SmtpError(ServicioExternoError):
    """El servidor SMTP no se alcanzó o rechazó el envío (502)."""


def sender(settings: Settings) -> str:
    if not settings.SMTP_HOST:
        raise EmailNoConfigurado("SMTP_HOST")
    if settings.SMTP_REMITENTE:
        return settings.SMTP_REMITENTE
    if settings.SMTP_USUARIO and "@" in settings.SMTP_USUARIO:
        return settings.SMTP_USUARIO
    raise EmailNoConfigurado("SMTP_REMITENTE")


def server_address(settings: Settings) -> str:
    return f"{settings.SMTP_HOST}:{settings.SMTP_PORT}"


def build_message(
    settings: Settings,
    row: HistorialBackup,
    destino: str,
    contenido: bytes,
    md5: str,
    base: HistorialBackup | None = None,
) -> EmailMessage:
    """El email: asunto en español, detalles y MD5 en el cuerpo, el `.sql.gz` adjunto tal cual."""
    origen = sender(settings)
    msg = EmailMessage()
    msg["Subject"] = f"Backup {row.tipo} {row.nombre_archivo}"
    msg["From"] = origen
    msg["To"] = destino
    msg["Date"] = format_datetime(datetime.now(settings.tz))
    dominio = origen.rsplit("@", 1)[-1] if "@" in origen else None
    msg["Message-ID"] = make_msgid("backup", domain=dominio)
    fecha = (
        row.fecha_creacion.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        if row.fecha_creacion
        else "?"
    )
    lineas = [
        f"Backup {row.tipo} del inventario, generado el {fecha}.",
        "",
        f"Archivo:      {row.nombre_archivo}",
        f"Tamaño:       {row.tamanio_legible} ({len(contenido)} bytes)",
        f"MD5:          {md5}",
        f"Tablas:       {row.tablas_respaldadas}",
        f"Registros:    {row.registros_totales}",
        f"Duración:     {row.duracion_segundos or 0:.2f} s",
        f"Ejecutado por: {row.ejecutado_por}",
        "",
        "Compruebe el archivo antes de usarlo:  md5sum " + row.nombre_archivo,
        "Debe mostrar el MD5 de arriba.",
        "",
    ]
    if row.tipo != TipoBackup.COMPLETO:
        nombre_base = base.nombre_archivo if base is not None else f"id {row.id_backup_base}"
        lineas += [
            f"Es un backup DIFERENCIAL: restaure primero el completo {nombre_base}",
            "y después aplique este archivo.",
            "",
        ]
    lineas += [
        "Restaurar (PostgreSQL):",
        f"  gunzip -c {row.nombre_archivo} | psql -d base_datos",
        "",
        "Enviado por el sistema de inventario.",
    ]
    msg.set_content("\n".join(lineas))
    msg.add_attachment(contenido, maintype=MIME_GZIP[0], subtype=MIME_GZIP[1], filename=row.nombre_archivo)
    return msg


def send(settings: Settings, message: EmailMessage, destino: str | list[str]) -> None:
    """Entrega el mensaje al servidor SMTP configurado; cualquier fallo es un `SmtpError` claro.
    `destino`: una dirección o varias (los avisos de modules/envios)."""
    destinos = [destino] if isinstance(destino, str) else destino
    destino = ", ".join(destinos)
    host, port, timeout = settings.SMTP_HOST, settings.SMTP_PORT, settings.SMTP_TIMEOUT
    if not host:
        raise EmailNoConfigurado("SMTP_HOST")
    donde = server_address(settings)
    contexto = ssl.create_default_context()
    try:
        if settings.SMTP_TLS == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=contexto)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if settings.SMTP_TLS == "starttls":
                smtp.starttls(context=contexto)
                smtp.ehlo()
            if settings.SMTP_USUARIO:
                password = settings.SMTP_PASSWORD.get_secret_value() if settings.SMTP_PASSWORD else ""
                smtp.login(settings.SMTP_USUARIO, password)
            smtp.send_message(message, to_addrs=destinos)
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpError(
            f"El servidor SMTP {donde} rechazó el usuario o la contraseña (SMTP_USUARIO/SMTP_PASSWORD): "
            f"{_reply(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        detalle = "; ".join(f"{_reply(c, m)}" for c, m in exc.recipients.values())
        raise SmtpError(f"El servidor SMTP {donde} rechazó el destinatario {destino}: {detalle}") from None
    except smtplib.SMTPSenderRefused as exc:
        raise SmtpError(
            f"El servidor SMTP {donde} rechazó el remitente {exc.sender}: {_reply(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPDataError as exc:
        raise SmtpError(
            f"El servidor SMTP {donde} rechazó el mensaje: {_reply(exc.smtp_code, exc.smtp_error)}"
            + (
                ". Si es por tamaño, descargue el backup con GET /api/v1/backup/{id}/descargar"
                if exc.smtp_code == 552
                else ""
            )
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SmtpError(
            f"El servidor SMTP {donde} no admite una función necesaria ({exc}); revise SMTP_TLS y SMTP_USUARIO"
        ) from None
    except smtplib.SMTPServerDisconnected:
        raise SmtpError(f"El servidor SMTP {donde} cortó la conexión antes de terminar el envío") from None
    except smtplib.SMTPResponseException as exc:
        raise SmtpError(
            f"El servidor SMTP {donde} respondió con un error: {_reply(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPException as exc:
        raise SmtpError(f"Error de SMTP con {donde}: {exc.__class__.__name__}: {exc}") from None
    except ssl.SSLError as exc:
        raise SmtpError(
            f"Falló la conexión TLS con el servidor SMTP {donde} ({exc.reason or exc.__class__.__name__}). "
            "Revise SMTP_TLS (ssl para el puerto 465, starttls para el 587)"
        ) from None
    except socket.gaierror:
        raise SmtpError(
            f"No se encontró el servidor SMTP {host} (nombre desconocido). Revise SMTP_HOST"
        ) from None
    except ConnectionRefusedError:
        raise SmtpError(
            f"El servidor SMTP {donde} rechazó la conexión (¿puerto correcto? ¿servicio caído?)"
        ) from None
    except TimeoutError:
        raise SmtpError(f"El servidor SMTP {donde} no respondió en {timeout:g} s") from None
    except OSError as exc:
        raise SmtpError(f"No se pudo conectar con el servidor SMTP {donde}: {exc.strerror or exc}") from None
    except UnicodeError:
        raise SmtpError(
            f"El servidor SMTP {donde} no admite direcciones con caracteres internacionales (SMTPUTF8)"
        ) from None


def _reply(code: int | None, text: bytes | str | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text or ''}".strip()
