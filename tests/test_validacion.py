"""Todo mensaje de validación en español, también los que pydantic arma solo (literales, enums,
correos, listas): nada de "Input should be" ni "'A' or 'B'"."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from inventario.errors import cantidad, traducir

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
        (
            "post",
            "/api/v1/usuarios",
            {"nombre_usuario": "ana", "password": "123"},
            "password: debe tener al menos 8 caracteres",
        ),
        (
            "post",
            "/api/v1/usuarios",
            {"nombre_usuario": "a" * 101, "password": "clave-larga"},
            "nombre_usuario: debe tener como máximo 100 caracteres",
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


@given(minimo=st.integers(1, 500), extra=st.integers(1, 50))
@settings(max_examples=50)
def test_largo_de_texto_dice_el_limite(minimo: int, extra: int) -> None:
    """Demasiado corto o largo dice cuántos caracteres, con la palabra que concuerda."""
    from typing import Annotated

    from pydantic import StringConstraints, TypeAdapter, ValidationError

    maximo = minimo + extra
    adapter: TypeAdapter[str] = TypeAdapter(
        Annotated[str, StringConstraints(min_length=minimo, max_length=maximo)]
    )
    palabra = {1: "carácter"}.get(minimo, "caracteres")
    for valor, esperado in (
        ("x" * (minimo - 1), f"campo: debe tener al menos {minimo} {palabra}"),
        ("x" * (maximo + 1), f"campo: debe tener como máximo {maximo} caracteres"),
    ):
        with pytest.raises(ValidationError) as exc:
            adapter.validate_python(valor)
        (err,) = exc.value.errors()
        assert traducir({**err, "loc": ("body", "campo")}) == esperado


def test_cantidad_concuerda() -> None:
    assert cantidad(1, "corrida") == "1 corrida" and cantidad(2, "corrida") == "2 corridas"
    assert cantidad(0, "alerta nueva", "alertas nuevas") == "0 alertas nuevas"
    assert cantidad(1, "producto sin stock", "productos sin stock") == "1 producto sin stock"
    assert cantidad(2, "canal", "canales") == "2 canales"
