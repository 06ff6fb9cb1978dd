"""Límites de tamaño de cada petición, aplicados antes de cualquier ruta, dependencia o log propio.

Una URL, una cabecera o un cuerpo enormes se rechazan aquí con su código (414, 431, 413) y un
`{"detalle"}` en español. Lo que ni siquiera cabe en el búfer del servidor HTTP (más de
`MAX_HEAD_BYTES` entre línea de petición y cabeceras) lo corta uvicorn antes (400).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_plus

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_URL = 8 * 1024  # ruta + query, en bytes
MAX_HEADER = 8 * 1024  # nombre + valor de una cabecera
MAX_BODY = 1024 * 1024  # los cuerpos JSON de la API son de unos cientos de bytes
MAX_HEAD_BYTES = 32 * 1024  # h11_max_incomplete_event_size de uvicorn (ver cli.serve)
# Caracteres de control (también escritos %00, %0A...) en la ruta o en la query: los cuerpos los
# rechaza cada esquema (productos.schemas.Texto); los parámetros de la URL, este filtro común.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


async def _reject(send: Send, status: int, detalle: str, errores: list[str] | None = None) -> None:
    content: dict[str, object] = {"detalle": detalle}
    if errores is not None:
        content["errores"] = errores
    body = json.dumps(content, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Middleware ASGI: URL, cabeceras y cuerpo acotados."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_len = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url_len > MAX_URL:
            await _reject(send, 414, f"La URL es demasiado larga ({url_len} bytes; máximo {MAX_URL})")
            return
        query = scope.get("query_string", b"").decode("utf-8", "replace")
        if _CONTROL.search(scope["path"]) or _CONTROL.search(unquote_plus(query, errors="replace")):
            detalle = "la URL no puede contener caracteres de control (p. ej. %00 o %0A)"
            await _reject(send, 422, f"Datos inválidos: {detalle}", errores=[detalle])
            return
        length: int | None = None
        for name, value in scope["headers"]:
            if len(name) + len(value) > MAX_HEADER:
                await _reject(
                    send,
                    431,
                    f"La cabecera {name[:50].decode('latin-1')!r} es demasiado larga (máximo {MAX_HEADER} bytes)",
                )
                return
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
        if length is not None and length > MAX_BODY:
            await _reject(send, 413, _body_message())
            return
        await self._call_counting_body(scope, receive, send)

    async def _call_counting_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Un cuerpo sin Content-Length (chunked) se cuenta mientras llega.

        Al pasarse, respondemos 413 nosotros y la aplicación ve una desconexión: lo que intente
        responder después (FastAPI lo convertiría en un 400 genérico) ya no sale.
        """
        received = 0
        started = rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY:
                    rejected = True
                    if not started:
                        await _reject(send, 413, _body_message())
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except ClientDisconnect:
            # La "desconexión" que le dimos a la aplicación al cortar el cuerpo: ya respondimos 413.
            if not rejected:
                raise


def _body_message() -> str:
    return f"El cuerpo de la petición es demasiado grande (máximo {MAX_BODY // 1024} KB)"
