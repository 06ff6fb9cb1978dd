"""Fuzz guiado por el esquema: schemathesis genera peticiones (válidas e inválidas) para cada
operación del OpenAPI de la app y las envía en proceso con el TestClient y un token ADMIN.

Ninguna respuesta puede ser un 500 (`not_a_server_error`, con 502/503/507 como únicos 5xx
admitidos: son los documentados de backup y email, siempre con `detalle`), y todo error lleva un
`detalle` en texto.

Acotado: FUZZ_EJEMPLOS ejemplos por operación y modo (por defecto 8), semilla fija FUZZ_SEMILLA
(por defecto la del plan) para que CI no cambie de ejemplos entre corridas; para explorar más:
`FUZZ_EJEMPLOS=50 FUZZ_SEMILLA=$RANDOM pytest tests/test_fuzz_api.py`.

Los endpoints que lanzan backups entran en el fuzz: con el 202 el backup sigue en un hilo, así que
al final se espera a que terminen todos antes de cerrar la app (y con varios a la vez, los demás
reciben 409). El email va a un servidor SMTP de loopback (aiosmtpd), así que también se envía de
verdad. Tras cada petición a `/usuarios` se devuelve al admin su rol y actividad: el fuzz puede
desactivarlo o quitarle el rol, y entonces todo lo demás sería un 401/403 sin interés.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
import schemathesis
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from inventario.config import Settings
from inventario.postgres import DatabaseServer
from tests.backup_support import restaurar_admin
from tests.conftest import aplicacion
from tests.servicio_support import puerto_libre
from tests.smtp_support import Buzon

pytestmark = pytest.mark.lento

EJEMPLOS = int(os.environ.get("FUZZ_EJEMPLOS", "8"))
SEMILLA = int(os.environ.get("FUZZ_SEMILLA", "20251203"))
PERMITIDOS_5XX = {502, 503, 507}
H = dict[str, str]


@pytest.fixture
def smtp() -> Iterator[int]:
    port = puerto_libre()
    controller = Controller(Buzon(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def settings(settings: Settings, smtp: int) -> Settings:
    return settings.model_copy(
        update={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": smtp,
            "SMTP_TLS": "none",
            "SMTP_REMITENTE": "inventario@empresa.com",
            "SMTP_TIMEOUT": 5,
        }
    )


def describir(kwargs: dict, status: int, texto: str) -> str:
    cuerpo = kwargs.get("json", kwargs.get("data"))
    return (
        f"{kwargs['method']} {kwargs['url']} params={kwargs.get('params')!r} "
        f"cuerpo={json.dumps(cuerpo, default=str, ensure_ascii=False)[:300]} -> {status} {texto[:300]}"
    )


def test_fuzz_toda_la_api_sin_500(client: TestClient, admin_headers: H, fresh_db: DatabaseServer) -> None:
    # Algo que consultar: un producto con lote y un backup completo.
    r = client.post("/api/v1/productos", json={"codigo": "P-1", "nombre": "Arroz"}, headers=admin_headers)
    assert r.status_code == 201
    client.post(
        "/api/v1/lotes",
        json={"id_producto": r.json()["id_producto"], "codigo_lote": "L1", "cantidad": 5},
        headers=admin_headers,
    )
    assert (
        client.post("/api/v1/backup/ejecutar-completo?esperar=true", headers=admin_headers).status_code == 201
    )

    config = SchemathesisConfig.from_dict(
        {
            "checks": {
                "not_a_server_error": {
                    "expected-statuses": ["1XX", "2XX", "3XX", "4XX", *map(str, PERMITIDOS_5XX)]
                }
            }
        }
    )
    schema = schemathesis.openapi.from_dict(aplicacion(client).openapi(), config=config)
    fallos: list[str] = []
    conteo: dict[int, int] = {}
    operaciones = 0
    inicio = time.monotonic()
    for resultado in schema.get_all_operations():
        operation = resultado.ok()
        operaciones += 1
        for modo in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=modo))
            @hsettings(
                max_examples=EJEMPLOS,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @seed(SEMILLA)
            def probar(case: schemathesis.Case) -> None:
                kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=admin_headers)
                if not kwargs.get("cookies"):
                    kwargs.pop("cookies", None)
                if isinstance(kwargs.get("data"), bytes | str):
                    kwargs["content"] = kwargs.pop("data")  # httpx: cuerpo crudo va en `content`
                response = client.request(**kwargs)
                conteo[response.status_code] = conteo.get(response.status_code, 0) + 1
                # probar corre dentro de esta misma iteración: `operation` no cambia debajo (B023).
                if "/usuarios" in operation.path or "/auth/" in operation.path:  # noqa: B023
                    restaurar_admin(fresh_db)
                try:
                    case.validate_response(response, checks=[not_a_server_error])
                    if response.status_code >= 400:
                        detalle = response.json().get("detalle")
                        assert isinstance(detalle, str) and detalle, "error sin `detalle`"
                except Exception as exc:
                    fallos.append(
                        f"{exc.__class__.__name__}: {describir(kwargs, response.status_code, response.text)}"
                    )

            try:
                probar()
            except Unsatisfiable:
                pass  # p. ej. no hay peticiones negativas posibles para una operación sin parámetros
    assert aplicacion(client).state.backup_service.wait_background(timeout=120), "quedaron backups en curso"
    duracion = time.monotonic() - inicio
    print(
        f"\nfuzz: {operaciones} operaciones, {sum(conteo.values())} peticiones en {duracion:.1f} s: {sorted(conteo.items())}"
    )
    assert operaciones >= 25  # toda la API, no solo una parte
    assert 500 not in conteo
    assert not fallos, "\n".join(fallos[:30])
