"""`GET /metrics`: formato de exposición de Prometheus.

Apagado (404) salvo METRICAS_HABILITADAS. Con METRICAS_TOKEN, exige `Authorization: Bearer <token>`
(401 sin él o con otro). Fuera del esquema OpenAPI: no es parte de la API de la tienda.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inventario.errors import NoAutorizado, NoEncontrado

router = APIRouter(tags=["metricas"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
    settings = request.app.state.settings
    if not settings.METRICAS_HABILITADAS:
        raise NoEncontrado("Las métricas están apagadas: defina METRICAS_HABILITADAS=true")
    if settings.METRICAS_TOKEN is not None:
        esperado = f"Bearer {settings.METRICAS_TOKEN.get_secret_value()}".encode()
        if not hmac.compare_digest((authorization or "").encode(), esperado):
            raise NoAutorizado(
                "Falta el token de métricas o no es válido (Authorization: Bearer <METRICAS_TOKEN>)"
            )
    return Response(generate_latest(request.app.state.metricas), media_type=CONTENT_TYPE_LATEST)
