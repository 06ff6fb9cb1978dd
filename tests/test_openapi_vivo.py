"""El OpenAPI dice la verdad: schemathesis contra un `inventario serve` real en loopback, con un token
ADMIN, comprueba que cada respuesta tenga un código documentado (`status_code_conformance`), el
Content-Type documentado (`content_type_conformance`) y un cuerpo que cumpla el esquema documentado
(`response_schema_conformance`). Es lo que usan los generadores de clientes.

Acotado para correr en CI en cada commit: OPENAPI_EJEMPLOS ejemplos por operación y modo (por
defecto 4), semilla fija; para explorar más: `OPENAPI_EJEMPLOS=50 pytest tests/test_openapi_vivo.py`."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inventario.postgres import DatabaseServer
from tests.backup_support import restaurar_admin
from tests.conftest import ADMIN_PASSWORD
from tests.servicio_support import Servicio, servicio

pytestmark = pytest.mark.lento

EJEMPLOS = int(os.environ.get("OPENAPI_EJEMPLOS", "4"))
SEMILLA = int(os.environ.get("FUZZ_SEMILLA", "20251203"))
INGLES = re.compile(
    r"Input should|Field required|value is not|should (?:be|have)|Value error|Extra inputs|unable to parse"
    r"|Not Found|Method Not Allowed| or '"
)
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def vivo(cli_env: dict[str, str]) -> Iterator[Servicio]:
    with servicio({**cli_env, "BACKUP_ENABLED": "false"}, "--sin-scheduler") as srv:
        yield srv


def test_respuestas_conformes_al_openapi(vivo: Servicio, fresh_db: DatabaseServer) -> None:
    token = httpx.post(
        vivo.url + "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    # Algo que consultar: un producto con lote y un backup completo.
    producto = httpx.post(
        vivo.url + "/api/v1/productos", json={"codigo": "P-1", "nombre": "Arroz"}, headers=headers
    ).json()
    httpx.post(
        vivo.url + "/api/v1/lotes",
        json={"id_producto": producto["id_producto"], "codigo_lote": "L1", "cantidad": 5},
        headers=headers,
    )
    r = httpx.post(vivo.url + "/api/v1/backup/ejecutar-completo?esperar=true", headers=headers, timeout=120)
    assert r.status_code == 201, r.text

    schema = schemathesis.openapi.from_url(vivo.url + "/openapi.json")
    fallos: list[str] = []
    ingles: list[str] = []  # mensajes de error con texto en inglés (de pydantic o de FastAPI)
    conteo: dict[int, int] = {}
    operaciones = 0
    inicio = time.monotonic()
    with requests.Session() as sesion:
        for resultado in schema.get_all_operations():
            operation = resultado.ok()
            operaciones += 1
            # Con token ADMIN (válidas e inválidas) y una vez sin token: el 401 también se documenta.
            for modo, con_token in (
                (GenerationMode.POSITIVE, True),
                (GenerationMode.NEGATIVE, True),
                (GenerationMode.POSITIVE, False),
            ):

                @given(case=operation.as_strategy(generation_mode=modo))
                @hsettings(
                    max_examples=EJEMPLOS if con_token else 1,
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @seed(SEMILLA)
                def probar(case: schemathesis.Case) -> None:
                    response = case.call(
                        base_url=vivo.url,
                        session=sesion,
                        headers=headers if con_token else {},  # noqa: B023 (corre en esta vuelta)
                        timeout=60,
                    )
                    conteo[response.status_code] = conteo.get(response.status_code, 0) + 1
                    if response.status_code >= 400 and INGLES.search(response.text):
                        ingles.append(
                            f"{case.operation.method.upper()} {case.operation.path}: {response.text[:300]}"
                        )
                    if "/usuarios" in case.operation.path or "/auth/" in case.operation.path:
                        restaurar_admin(fresh_db)
                    case.validate_response(response, checks=CHECKS)

                try:
                    probar()
                except Unsatisfiable:
                    pass  # sin peticiones negativas posibles (operación sin parámetros)
                except FailureGroup as exc:  # el fallo de schemathesis (BaseExceptionGroup)
                    fallos.append(
                        f"{operation.method.upper()} {operation.path} ({modo.value}, token={con_token}): {exc}"
                    )
    print(
        f"\nOpenAPI vivo: {operaciones} operaciones, {sum(conteo.values())} peticiones en "
        f"{time.monotonic() - inicio:.1f} s: {sorted(conteo.items())}"
    )
    assert operaciones >= 25  # toda la API
    assert not fallos, "\n\n".join(fallos)
    assert not ingles, "\n".join(ingles[:20])
