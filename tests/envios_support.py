"""Receptores reales en loopback para las pruebas de avisos: un webhook HTTP (canal apprise
`json://` y el ping de backups) que se puede "caer" (503) y levantar."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
