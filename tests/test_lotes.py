from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.crud_support import crear, filas, hoy

API = "/api/v1/lotes"
H = dict[str, str]


def estado(engine: Engine) -> tuple[list[tuple], list[tuple]]:
    return filas(engine, "lotes"), filas(engine, "movimientos")


def test_sin_token_401(client: TestClient) -> None:
    for method, path in [("GET", API), ("POST", API), ("GET", f"{API}/1"), ("PATCH", f"{API}/1")]:
        r = client.request(method, path, json={})
        assert r.status_code == 401, (method, path)


def test_crear_registra_entrada_inicial_y_listar(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    HOY = hoy(engine)
    p = crear(client, admin_headers)["id_producto"]
    q = crear(client, admin_headers, codigo="P-2")["id_producto"]
    r = client.post(
        API,
        json={
            "id_producto": p,
            "codigo_lote": " L-001 ",
            "fecha_vencimiento": "2030-05-31",
            "cantidad": 12,
        },
        headers=operador_headers,
    )
    assert r.status_code == 201, r.text
    l1 = r.json()
    assert l1["codigo_lote"] == "L-001" and l1["cantidad"] == 12
    assert l1["fecha_vencimiento"] == "2030-05-31" and l1["vencido"] is False
    with engine.connect() as conn:
        movs = conn.execute(
            text(
                "SELECT tipo, id_producto, id_lote, cantidad, motivo, u.nombre_usuario FROM movimientos "
                "JOIN usuarios u USING (id_usuario)"
            )
        ).all()
    assert [tuple(m) for m in movs] == [
        ("ENTRADA", p, l1["id_lote"], 12, "Cantidad inicial del lote", "operador1")
    ]

    # Sin cantidad: sin movimiento (un movimiento de 0 no existe).
    l2 = client.post(API, json={"id_producto": p, "codigo_lote": "L-002"}, headers=admin_headers).json()
    assert l2["cantidad"] == 0 and l2["fecha_vencimiento"] is None
    assert len(filas(engine, "movimientos")) == 1
    # El mismo código de lote en otro producto es válido.
    l3 = client.post(
        API,
        json={
            "id_producto": q,
            "codigo_lote": "L-001",
            "fecha_vencimiento": str(HOY - timedelta(days=1)),
            "cantidad": 1,
        },
        headers=admin_headers,
    ).json()
    assert l3["vencido"] is True

    r = client.get(f"{API}/{l1['id_lote']}", headers=operador_headers)
    assert r.status_code == 200 and r.json() == l1
    r = client.get(f"{API}/5555", headers=operador_headers)
    assert r.status_code == 404 and r.json()["detalle"] == "No existe el lote 5555"

    def ids(**params: object) -> list[int]:
        r = client.get(API, params=params, headers=operador_headers)
        assert r.status_code == 200, r.text
        return [x["id_lote"] for x in r.json()["items"]]

    # Por vencimiento, sin fecha al final.
    assert ids() == [l3["id_lote"], l1["id_lote"], l2["id_lote"]]
    assert ids(id_producto=p) == [l1["id_lote"], l2["id_lote"]]
    assert ids(vence_antes="2030-05-31") == [l3["id_lote"]]
    assert ids(vence_antes="2030-06-01") == [l3["id_lote"], l1["id_lote"]]
    assert ids(con_stock="true") == [l3["id_lote"], l1["id_lote"]]
    assert ids(con_stock="false") == [l2["id_lote"]]
    assert ids(id_producto=p, con_stock="true") == [l1["id_lote"]]
    assert ids(id_producto=987654) == []
    assert client.get(API, headers=admin_headers).json()["total"] == 3
    for params, mensaje in [
        ({"vence_antes": "31/05/2030"}, "vence_antes: debe ser una fecha AAAA-MM-DD"),
        ({"vence_antes": "2030-02-30"}, "vence_antes"),
        ({"id_producto": str(2**63)}, "id_producto: debe ser menor o igual"),
        ({"con_stock": "tal vez"}, "con_stock: debe ser verdadero o falso"),
    ]:
        r = client.get(API, params=params, headers=admin_headers)
        assert r.status_code == 422 and mensaje in r.json()["detalle"], r.text


def test_crear_con_datos_invalidos_no_cambia_nada(
    client: TestClient, admin_headers: H, engine: Engine
) -> None:
    p = crear(client, admin_headers)["id_producto"]
    inactivo = crear(client, admin_headers, codigo="VIEJO")["id_producto"]
    client.delete(f"/api/v1/productos/{inactivo}", headers=admin_headers)
    assert (
        client.post(
            API, json={"id_producto": p, "codigo_lote": "L1", "cantidad": 5}, headers=admin_headers
        ).status_code
        == 201
    )
    antes = estado(engine)
    base = {"id_producto": p, "codigo_lote": "L2"}
    casos = [
        ({"id_producto": 424242, "codigo_lote": "L2"}, 404, "No existe el producto 424242"),
        (
            {"id_producto": inactivo, "codigo_lote": "L2"},
            409,
            f"El producto {inactivo} ('VIEJO') está desactivado",
        ),
        ({**base, "codigo_lote": "L1"}, 409, f"Ya existe el lote 'L1' del producto {p}"),
        ({"id_producto": p}, 422, "codigo_lote: es obligatorio"),
        ({"codigo_lote": "L2"}, 422, "id_producto: es obligatorio"),
        ({**base, "id_producto": 2**63}, 422, "id_producto: debe ser menor o igual"),
        ({**base, "id_producto": "1"}, 422, "id_producto: debe ser un número entero"),
        ({**base, "codigo_lote": "C" * 61}, 422, "codigo_lote: debe tener como máximo 60 caracteres"),
        ({**base, "codigo_lote": ""}, 422, "codigo_lote: debe tener al menos 1 carácter"),
        ({**base, "cantidad": -1}, 422, "cantidad: debe ser mayor o igual que 0"),
        ({**base, "cantidad": 2**31}, 422, "cantidad: debe ser menor o igual que 2147483647"),
        ({**base, "cantidad": 2**64}, 422, "cantidad: debe ser menor o igual que 2147483647"),
        (
            {**base, "fecha_vencimiento": "2030-13-01"},
            422,
            "fecha_vencimiento: debe ser una fecha AAAA-MM-DD",
        ),
        (
            {**base, "fecha_vencimiento": "mañana"},
            422,
            "fecha_vencimiento: debe ser una fecha AAAA-MM-DD",
        ),
        (
            {**base, "fecha_vencimiento": 20300101},
            422,
            "fecha_vencimiento: debe ser una fecha AAAA-MM-DD",
        ),
        (
            {**base, "fecha_vencimiento": "2030-01-01T10:00:00"},
            422,
            "fecha_vencimiento: debe ser una fecha AAAA-MM-DD",
        ),
        ({**base, "vencido": True}, 422, "vencido: no es un campo permitido"),
    ]
    for body, status, mensaje in casos:
        r = client.post(API, json=body, headers=admin_headers)
        assert r.status_code == status, (body, r.text)
        assert mensaje in r.json()["detalle"], (body, r.text)
    assert estado(engine) == antes


def test_actualizar_solo_codigo_y_vencimiento(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    p = crear(client, admin_headers)["id_producto"]
    l1 = client.post(
        API,
        json={
            "id_producto": p,
            "codigo_lote": "L1",
            "cantidad": 5,
            "fecha_vencimiento": "2031-01-01",
        },
        headers=admin_headers,
    ).json()
    client.post(API, json={"id_producto": p, "codigo_lote": "L2"}, headers=admin_headers)
    url = f"{API}/{l1['id_lote']}"

    r = client.patch(url, json={"codigo_lote": "L1-B"}, headers=operador_headers)
    assert r.status_code == 200 and r.json()["codigo_lote"] == "L1-B"
    assert r.json()["fecha_vencimiento"] == "2031-01-01" and r.json()["cantidad"] == 5
    r = client.patch(url, json={"fecha_vencimiento": None}, headers=operador_headers)
    assert r.status_code == 200 and r.json()["fecha_vencimiento"] is None
    r = client.patch(url, json={"fecha_vencimiento": "2029-02-28"}, headers=operador_headers)
    assert r.status_code == 200 and r.json()["fecha_vencimiento"] == "2029-02-28"

    antes = estado(engine)
    casos = [
        (url, {"cantidad": 100}, 422, "la cantidad de un lote solo cambia mediante movimientos"),
        (url, {"id_producto": 2}, 422, "id_producto: no es un campo permitido"),
        (url, {"codigo_lote": None}, 422, "codigo_lote no puede ser null"),
        (url, {"codigo_lote": "L2"}, 409, f"Ya existe el lote 'L2' del producto {p}"),
        (
            url,
            {"fecha_vencimiento": "2029-02-29"},
            422,
            "fecha_vencimiento: debe ser una fecha AAAA-MM-DD",
        ),
        (f"{API}/31337", {"codigo_lote": "X"}, 404, "No existe el lote 31337"),
        (f"{API}/{2**63}", {"codigo_lote": "X"}, 422, "id_lote: debe ser menor o igual"),
    ]
    for path, body, status, mensaje in casos:
        r = client.patch(path, json=body, headers=admin_headers)
        assert r.status_code == status, (body, r.text)
        assert mensaje in r.json()["detalle"], (body, r.text)
    assert estado(engine) == antes
