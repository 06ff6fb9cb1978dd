"""Todo mensaje de validación en español, también los que pydantic arma solo (literales, enums,
correos, listas): nada de "Input should be" ni "'A' or 'B'"."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inventario.errors import traducir

H = dict[str, str]
INGLES = re.compile(
    r"Input should|Field required|value is not|should (?:be|have)|Value error| or '|Extra inputs"
)


@pytest.mark.parametrize(
    ("metodo", "ruta", "cuerpo", "esperado"),
    [
        (
            "post",
            "/api/v1/backup/ejecutar?tipo=SEMANAL",
            None,
            "debe ser uno de: 'COMPLETO', 'DIFERENCIAL', 'INCREMENTAL' o 'AUTO'",
        ),
        (
            "post",
            "/api/v1/usuarios",
            {"nombre_usuario": "ana", "password": "clave-larga", "rol": "JEFE"},
            "rol: debe ser uno de: 'ADMIN' o 'OPERADOR'",
        ),
        (
            "post",
            "/api/v1/usuarios",
            {"nombre_usuario": "ana", "password": "clave-larga", "email": "sin-arroba"},
            "email: no es una dirección de correo válida",
        ),
        (
            "get",
            "/api/v1/backup/listar?estado=RARO",
            None,
            "debe ser uno de: 'EN_PROCESO', 'COMPLETADO' o 'ERROR'",
        ),
        (
            "post",
            "/api/v1/movimientos",
            {"tipo": "VENTA", "id_producto": 1, "cantidad": 1},
            "ENTRADA, SALIDA o AJUSTE",
        ),
    ],
)
def test_literales_y_correos_en_espanol(
    client: TestClient, admin_headers: H, metodo: str, ruta: str, cuerpo: object, esperado: str
) -> None:
    r = client.request(metodo, ruta, json=cuerpo, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert esperado in r.json()["detalle"], r.json()
    assert not INGLES.search(r.text), r.text


@given(
    opciones=st.lists(
        st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8), min_size=2, max_size=6
    )
)
@settings(max_examples=50, suppress_health_check=list(HealthCheck))
def test_cualquier_literal_en_espanol(opciones: list[str]) -> None:
    from typing import Literal

    from pydantic import TypeAdapter, ValidationError

    opciones = list(dict.fromkeys(opciones))
    assume(len(opciones) >= 2)
    adapter: TypeAdapter[object] = TypeAdapter(Literal[tuple(opciones)])  # type: ignore[arg-type]  # un Literal construido en tiempo de ejecución
    try:
        adapter.validate_python(object())
    except ValidationError as exc:
        (err,) = exc.errors()
        texto = traducir({**err, "loc": ("body", "campo")})
        assert texto.startswith("campo: debe ser uno de: ") and not INGLES.search(texto), texto
        assert texto.endswith(f" o {opciones[-1]!r}"), texto
