"""Ayudas compartidas de las pruebas."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

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
