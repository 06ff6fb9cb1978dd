"""`GET /movimientos`: `total` exacto si es chico o si se pide; estimado (y marcado) si no.

Contra PostgreSQL real: la estimación sale del planificador (estadísticas de ANALYZE)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from inventario.pagination import MARGEN_CONTEO_EXACTO
from tests.crud_support import crear, lote

API = "/api/v1/movimientos"
H = dict[str, str]
# Más filas que cualquier página + el margen de conteo exacto: el total por omisión se estima.
MUCHOS = MARGEN_CONTEO_EXACTO + 5_000


@pytest.fixture
def muchos(client: TestClient, admin_headers: H, engine: Engine) -> dict[str, int]:
    """Un lote con MUCHOS movimientos (SALIDAS de 1 tras una ENTRADA) y otro con dos."""
    p = crear(client, admin_headers)["id_producto"]
    grande = lote(client, admin_headers, p, "GRANDE", MUCHOS, None)["id_lote"]
    chico = lote(client, admin_headers, p, "CHICO", 5, None)["id_lote"]
    with engine.begin() as conn:
        user = conn.scalar(text("SELECT min(id_usuario) FROM usuarios"))
        conn.execute(
            text(
                "INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, id_usuario) "
                "SELECT 'SALIDA', :p, :l, -1, :u FROM generate_series(1, :n - 1)"
            ),
            {"p": p, "l": grande, "u": user, "n": MUCHOS},
        )
        conn.execute(text("UPDATE lotes SET cantidad = 1 WHERE id_lote = :l"), {"l": grande})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE movimientos"))
    return {"producto": p, "grande": grande, "chico": chico}


def exact_count(engine: Engine, where: str = "true", **params: object) -> int:
    with engine.connect() as conn:
        return conn.scalar(text(f"SELECT count(*) FROM movimientos WHERE {where}"), params)


def listar(client: TestClient, headers: H, **params: object) -> dict:
    r = client.get(API, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_sin_filtros_estima_y_lo_dice(
    client: TestClient, operador_headers: H, engine: Engine, muchos: dict[str, int]
) -> None:
    real = exact_count(engine)
    assert real == MUCHOS + 1  # la ENTRADA y las SALIDAS del grande, la ENTRADA del chico
    body = listar(client, operador_headers)
    assert body["total_exacto"] is False
    # Nunca menos de lo que ya contó (página + margen), y cerca del real: viene de ANALYZE.
    assert body["total"] > 50 + MARGEN_CONTEO_EXACTO
    assert abs(body["total"] - real) <= real * 0.1, (body["total"], real)
    assert len(body["items"]) == 50 and body["offset"] == 0 and body["limit"] == 50

    exacto = listar(client, operador_headers, total_exacto="true")
    assert exacto["total_exacto"] is True and exacto["total"] == real
    assert exacto["items"] == body["items"]  # la página es la misma: solo cambia cómo se cuenta


def test_estimacion_sigue_a_la_tabla(
    client: TestClient, operador_headers: H, engine: Engine, muchos: dict[str, int]
) -> None:
    """Sin volver a correr ANALYZE, la estimación escala con el tamaño actual de la tabla."""
    antes = listar(client, operador_headers)["total"]
    with engine.begin() as conn:
        user = conn.scalar(text("SELECT min(id_usuario) FROM usuarios"))
        conn.execute(
            text(
                "INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, id_usuario) "
                "SELECT 'ENTRADA', :p, :l, 1, :u FROM generate_series(1, :n)"
            ),
            {"p": muchos["producto"], "l": muchos["chico"], "u": user, "n": MUCHOS},
        )
    despues = listar(client, operador_headers)
    assert despues["total_exacto"] is False
    assert despues["total"] > antes * 1.5, (antes, despues["total"])


def test_filtro_chico_cuenta_exacto(
    client: TestClient, operador_headers: H, engine: Engine, muchos: dict[str, int]
) -> None:
    body = listar(client, operador_headers, id_lote=muchos["chico"])
    assert body["total_exacto"] is True and body["total"] == 1 == len(body["items"])
    # Filtro grande: estimado, pero no por debajo de lo contado.
    grande = listar(client, operador_headers, id_lote=muchos["grande"], tipo="SALIDA")
    assert grande["total_exacto"] is False and grande["total"] > MARGEN_CONTEO_EXACTO
    exacto = listar(client, operador_headers, id_lote=muchos["grande"], tipo="SALIDA", total_exacto="true")
    assert exacto["total"] == MUCHOS - 1 and exacto["total_exacto"] is True
    vacio = listar(client, operador_headers, desde="2000-01-01", hasta="2000-01-02")
    assert vacio == {"total": 0, "offset": 0, "limit": 50, "items": [], "total_exacto": True}


def test_total_exacto_invalido_422(client: TestClient, operador_headers: H) -> None:
    r = client.get(API, params={"total_exacto": "quizas"}, headers=operador_headers)
    assert r.status_code == 422 and "detalle" in r.json()


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.integers(0, MUCHOS + 10),
    limit=st.integers(1, 500),
    filtro=st.sampled_from(["ninguno", "grande", "chico", "producto"]),
)
def test_exacto_o_marcado(
    client: TestClient,
    operador_headers: H,
    engine: Engine,
    muchos: dict[str, int],
    offset: int,
    limit: int,
    filtro: str,
) -> None:
    """Cuando `total_exacto` es true el total es el real; cuando es false, el real pasa del margen
    contado después de la página y el estimado no es menor que lo contado."""
    params: dict[str, object] = {"offset": offset, "limit": limit}
    where, args = "true", {}
    if filtro == "grande" or filtro == "chico":
        params["id_lote"] = muchos[filtro]
        where, args = "id_lote = :v", {"v": muchos[filtro]}
    elif filtro == "producto":
        params["id_producto"] = muchos["producto"]
        where, args = "id_producto = :v", {"v": muchos["producto"]}
    real = exact_count(engine, where, **args)
    body = listar(client, operador_headers, **params)
    assert len(body["items"]) == max(0, min(limit, real - offset))
    cap = offset + limit + MARGEN_CONTEO_EXACTO
    if body["total_exacto"]:
        assert body["total"] == real and real <= cap
    else:
        assert real > cap and body["total"] > cap
    assert listar(client, operador_headers, **params, total_exacto="true")["total"] == real
