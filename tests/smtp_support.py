"""Ayudas compartidas de las pruebas."""

from __future__ import annotations

import email
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from inventario.config import Settings
from tests.servicio_support import puerto_libre

USUARIO, CLAVE = "backups@empresa.com", "clave-smtp-secreta-123"


@dataclass
class Buzon:
    recibidos: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.recibidos.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        )
        return "250 Mensaje aceptado"

    def mensajes(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, policy=default_policy) for _, _, raw in self.recibidos]


def autenticador(
    server: object, session: object, envelope: object, mechanism: str, auth_data: object
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USUARIO.encode()
        and auth_data.password == CLAVE.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Buzon, int]]:
    buzon = Buzon()
    port = puerto_libre()
    controller = Controller(buzon, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        yield buzon, port
    finally:
        controller.stop()


@pytest.fixture
def settings(settings: Settings, smtp: tuple[Buzon, int]) -> Settings:
    return settings.model_copy(
        update={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp[1],
            "SMTP_TLS": "none",
            "SMTP_REMITENTE": "Inventario <inventario@empresa.com>",
            "SMTP_TIMEOUT": 10,
        }
    )


def adjunto(msg: EmailMessage) -> tuple[str | None, str, bytes]:
    (parte,) = list(msg.iter_attachments())
    return parte.get_filename(), parte.get_content_type(), cast(bytes, parte.get_payload(decode=True))
