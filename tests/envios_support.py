"""Receptores reales en loopback para las pruebas de avisos: un webhook HTTP (canal apprise
`json://` y el ping de backups) que se puede "caer" (503) y levantar."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlalchemy import text

from inventario.config import Settings
from inventario.logging_setup import setup_logging
from inventario.runtime import Runtime
from tests.servicio_support import puerto_libre
from tests.smtp_support import Buzon


@dataclass
class Peticion:
    metodo: str
    ruta: str
    cabeceras: dict[str, str]
    cuerpo: Any


@dataclass
class Receptor:
    port: int = 0
    status: int = 200
    peticiones: list[Peticion] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def recibidas(self, metodo: str | None = None) -> list[Peticion]:
        with self.lock:
            return [p for p in self.peticiones if metodo is None or p.metodo == metodo]


@contextmanager
def receptor_http() -> Iterator[Receptor]:
    receptor = Receptor()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            status = receptor.status
            if status < 300:  # una petición rechazada no se cuenta como entregada
                with receptor.lock:
                    receptor.peticiones.append(Peticion(self.command, self.path, dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_HEAD = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receptor.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receptor
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


SECRETO = "tok-Secreto-9f3a7c"


CLAVE_URL = "clave-webhook-77d1"


@pytest.fixture
def smtp() -> Iterator[tuple[Buzon, int, Controller]]:
    buzon = Buzon()
    port = puerto_libre()
    controller = Controller(buzon, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield buzon, port, controller
    finally:
        try:
            controller.stop()
        except AssertionError:
            pass  # ya detenido por la prueba


@pytest.fixture
def webhook() -> Iterator[Receptor]:
    with receptor_http() as receptor:
        yield receptor


def url_webhook(receptor: Receptor) -> str:
    return f"json://avisos:{CLAVE_URL}@{receptor.base()}/hook/{SECRETO}?-X-Token={SECRETO}"


@pytest.fixture
def settings(settings: Settings, smtp: tuple[Buzon, int, Controller], webhook: Receptor) -> Settings:
    return settings.model_copy(
        update={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp[1],
            "SMTP_TLS": "none",
            "SMTP_REMITENTE": "Inventario <inventario@empresa.com>",
            "SMTP_TIMEOUT": 5,
            "NOTIFICACIONES_EMAIL": "duenia@farmacia.com, encargado@farmacia.com",
            "NOTIFICACIONES_URLS": SecretStr(url_webhook(webhook)),
        }
    )


@pytest.fixture
def logs(settings: Settings) -> Callable[[], str]:
    """Los archivos de log reales, en DEBUG (urllib3 escribe ahí las rutas que pide)."""
    setup_logging(settings.logs_dir, "DEBUG")
    return lambda: "\n".join(p.read_text(encoding="utf-8") for p in sorted(settings.logs_dir.glob("*.log")))


def envios(runtime: Runtime) -> Sequence[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id_envio, id_mensaje, canal, estado, intentos, ultimo_error FROM envios ORDER BY id_envio"
            )
        ).all()


def vencer_reintentos(runtime: Runtime) -> None:
    """El reloj avanza hasta el próximo intento (la espera real es de minutos)."""
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE envios SET proximo_intento = now() WHERE proximo_intento IS NOT NULL"))
