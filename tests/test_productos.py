from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.crud_support import crear, filas, hoy, lote

API = "/api/v1/productos"
H = dict[str, str]


def test_sin_token_401(client: TestClient) -> None:
    for method, path in [
        ("GET", API),
        ("POST", API),
        ("GET", f"{API}/1"),
        ("PATCH", f"{API}/1"),
        ("DELETE", f"{API}/1"),
        ("GET", f"{API}/1/stock"),
    ]:
        r = client.request(method, path, json={"codigo": "X", "nombre": "Y"})
        assert r.status_code == 401, (method, path)
        assert "token" in r.json()["detalle"]


def test_crear_obtener_y_listar_con_filtros(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    # El operador también da de alta productos; los textos se recortan.
    p1 = crear(client, operador_headers, codigo="  AZ-100 ", nombre="Azúcar 1 kg", stock_minimo=10)
    assert p1["codigo"] == "AZ-100" and p1["unidad"] == "unidad" and p1["activo"] is True
    assert p1["stock_total"] == 0 and p1["cantidad_lotes"] == 0 and p1["bajo_minimo"] is True
    p2 = crear(
        client,
        admin_headers,
        codigo="AR_50%",
        nombre="Arroz",
        unidad="kg",
        descripcion="Grano largo",
    )
    p3 = crear(client, admin_headers, codigo="SAL-1", nombre="Sal fina")
    lote(client, admin_headers, p1["id_producto"], "L1", 4, None)
    lote(client, admin_headers, p1["id_producto"], "L2", 3, hoy(engine) + timedelta(days=9))
    lote(client, admin_headers, p2["id_producto"], "L1", 7, None)

    r = client.get(f"{API}/{p1['id_producto']}", headers=operador_headers)
    assert r.status_code == 200
    assert r.json()["stock_total"] == 7 and r.json()["cantidad_lotes"] == 2
    assert r.json()["bajo_minimo"] is True

    r = client.get(API, headers=operador_headers)
    body = r.json()
    assert body["total"] == 3 and body["offset"] == 0 and body["limit"] == 50
    # Orden por nombre.
    assert [p["codigo"] for p in body["items"]] == ["AR_50%", "AZ-100", "SAL-1"]
    assert {p["codigo"]: p["stock_total"] for p in body["items"]} == {
        "AR_50%": 7,
        "AZ-100": 7,
        "SAL-1": 0,
    }

    def codigos(**params: object) -> list[str]:
        r = client.get(API, params=params, headers=admin_headers)
        assert r.status_code == 200, r.text
        return [p["codigo"] for p in r.json()["items"]]

    assert codigos(q="azú") == ["AZ-100"]  # ILIKE, sin distinguir mayúsculas
    assert codigos(q="sal") == ["SAL-1"]  # nombre o código
    assert codigos(q="%") == ["AR_50%"]  # los comodines del usuario son literales
    assert codigos(q="_") == ["AR_50%"]
    assert codigos(q="") == ["AR_50%", "AZ-100", "SAL-1"]
    assert codigos(bajo_minimo="true") == ["AZ-100"]
    assert codigos(bajo_minimo="false") == ["AR_50%", "SAL-1"]
    assert codigos(limit=1, offset=1) == ["AZ-100"]
    client.delete(f"{API}/{p3['id_producto']}", headers=admin_headers)
    assert codigos(activo="false") == ["SAL-1"]
    assert codigos(activo="true", q="a") == ["AR_50%", "AZ-100"]

    r = client.get(API, params={"limit": 0}, headers=admin_headers)
    assert r.status_code == 422
    r = client.get(API, params={"bajo_minimo": "quizás"}, headers=admin_headers)
    assert r.status_code == 422 and "bajo_minimo" in r.json()["detalle"]
    r = client.get(API, params={"q": "x" * 201}, headers=admin_headers)
    assert r.status_code == 422 and "q: debe tener como máximo" in r.json()["detalle"]
    r = client.get(API, params={"q": "a\x00b"}, headers=admin_headers)
    assert r.status_code == 422 and "caracteres de control" in r.json()["detalle"]


def test_entradas_invalidas_422_409_y_nada_cambia(
    client: TestClient, admin_headers: H, engine: Engine
) -> None:
    crear(client, admin_headers, codigo="P-1")
    antes = filas(engine, "productos")
    casos = [
        ({"nombre": "Sin código"}, 422, "codigo: es obligatorio"),
        ({"codigo": "   ", "nombre": "x"}, 422, "codigo: debe tener al menos 1 carácter"),
        ({"codigo": "X" * 51, "nombre": "x"}, 422, "codigo: debe tener como máximo 50 caracteres"),
        ({"codigo": "X", "nombre": "n" * 201}, 422, "nombre: debe tener como máximo 200 caracteres"),
        (
            {"codigo": "X", "nombre": "x", "unidad": "u" * 31},
            422,
            "unidad: debe tener como máximo 30 caracteres",
        ),
        (
            {"codigo": "A\x00B", "nombre": "x"},
            422,
            "codigo: no puede contener caracteres de control (encontrado U+0000)",
        ),
        (
            {"codigo": "X", "nombre": "x", "stock_minimo": -1},
            422,
            "stock_minimo: debe ser mayor o igual que 0",
        ),
        (
            {"codigo": "X", "nombre": "x", "stock_minimo": 2**31},
            422,
            "stock_minimo: debe ser menor o igual que 2147483647",
        ),
        ({"codigo": "X", "nombre": "x", "stock_minimo": 10**30}, 422, "stock_minimo"),
        (
            {"codigo": "X", "nombre": "x", "stock_minimo": "5"},
            422,
            "stock_minimo: debe ser un número entero",
        ),
        (
            {"codigo": "X", "nombre": "x", "stock_minimo": True},
            422,
            "stock_minimo: debe ser un número entero",
        ),
        (
            {"codigo": "X", "nombre": "x", "stock_minimo": 1.5},
            422,
            "stock_minimo: debe ser un número entero",
        ),
        ({"codigo": "X", "nombre": "x", "activo": False}, 422, "activo: no es un campo permitido"),
        (
            {"codigo": "X", "nombre": "x", "stock_total": 9},
            422,
            "stock_total: no es un campo permitido",
        ),
        ({"codigo": 123, "nombre": "x"}, 422, "codigo: debe ser texto"),
        ({"codigo": "P-1", "nombre": "Otro"}, 409, "Ya existe un producto con el código 'P-1'"),
        ({"codigo": " P-1 ", "nombre": "Otro"}, 409, "Ya existe un producto con el código 'P-1'"),
    ]
    for body, status, mensaje in casos:
        r = client.post(API, json=body, headers=admin_headers)
        assert r.status_code == status, (body, r.text)
        assert mensaje in r.json()["detalle"], (body, r.text)
    r = client.post(
        API, content=b"{no es json", headers={**admin_headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "JSON" in r.json()["detalle"]
    r = client.post(API, json=["lista"], headers=admin_headers)
    assert r.status_code == 422
    assert filas(engine, "productos") == antes


def test_actualizar_permisos_y_errores(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    p = crear(client, admin_headers, codigo="P-1", descripcion="vieja")
    crear(client, admin_headers, codigo="P-2")
    url = f"{API}/{p['id_producto']}"

    r = client.patch(url, json={"nombre": " Nuevo nombre ", "stock_minimo": 3}, headers=operador_headers)
    assert r.status_code == 200, r.text
    assert r.json()["nombre"] == "Nuevo nombre" and r.json()["stock_minimo"] == 3
    assert r.json()["descripcion"] == "vieja"  # lo omitido no cambia
    r = client.patch(url, json={"descripcion": None}, headers=operador_headers)
    assert r.status_code == 200 and r.json()["descripcion"] is None
    r = client.patch(url, json={}, headers=operador_headers)
    assert r.status_code == 200 and r.json()["nombre"] == "Nuevo nombre"

    antes = filas(engine, "productos")
    casos = [
        (operador_headers, url, {"activo": False}, 403, "Se requiere el rol ADMIN"),
        (admin_headers, url, {"nombre": None}, 422, "nombre no puede ser null"),
        (admin_headers, url, {"codigo": "P-2"}, 409, "Ya existe un producto con el código 'P-2'"),
        (admin_headers, url, {"stock_minimo": -5}, 422, "stock_minimo"),
        (admin_headers, url, {"cantidad": 5}, 422, "cantidad: no es un campo permitido"),
        (admin_headers, url, {"activo": "no"}, 422, "activo: debe ser true o false"),
        (admin_headers, f"{API}/424242", {"nombre": "x"}, 404, "No existe el producto 424242"),
        (
            admin_headers,
            f"{API}/99999999999999999999",
            {"nombre": "x"},
            422,
            "id_producto: debe ser menor o igual",
        ),
        (
            admin_headers,
            f"{API}/0",
            {"nombre": "x"},
            422,
            "id_producto: debe ser mayor o igual que 1",
        ),
        (admin_headers, f"{API}/abc", {"nombre": "x"}, 422, "debe ser un número entero"),
    ]
    for headers, path, body, status, mensaje in casos:
        r = client.patch(path, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert mensaje in r.json()["detalle"], (body, r.text)
    assert filas(engine, "productos") == antes

    # El ADMIN puede desactivar y reactivar por PATCH.
    r = client.patch(url, json={"activo": False}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["activo"] is False
    r = client.patch(url, json={"activo": True}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["activo"] is True


def test_desactivar_solo_admin_e_idempotente(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    p = crear(client, admin_headers)
    url = f"{API}/{p['id_producto']}"
    r = client.delete(url, headers=operador_headers)
    assert r.status_code == 403 and r.json()["detalle"] == "Se requiere el rol ADMIN"
    assert client.get(url, headers=admin_headers).json()["activo"] is True
    for _ in range(2):
        r = client.delete(url, headers=admin_headers)
        assert r.status_code == 200 and r.json()["activo"] is False
    # Baja lógica: la fila sigue ahí y no hay registro de eliminación.
    assert len(filas(engine, "productos")) == 1
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM registro_eliminaciones")) == 0
    r = client.delete(f"{API}/777", headers=admin_headers)
    assert r.status_code == 404 and r.json()["detalle"] == "No existe el producto 777"
    r = client.get(f"{API}/777", headers=admin_headers)
    assert r.status_code == 404 and r.json()["detalle"] == "No existe el producto 777"
    assert client.get(f"{API}/{2**63}", headers=admin_headers).status_code == 422


def test_stock_por_lote_ordenado_por_vencimiento(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    p = crear(client, admin_headers, stock_minimo=100)
    HOY = hoy(engine)
    sin_fecha = lote(client, admin_headers, p["id_producto"], "SIN-FECHA", 5, None)
    lejos = lote(client, admin_headers, p["id_producto"], "LEJOS", 20, HOY + timedelta(days=300))
    vencido = lote(client, admin_headers, p["id_producto"], "VENCIDO", 3, HOY - timedelta(days=1))
    hoy_lote = lote(client, admin_headers, p["id_producto"], "HOY", 0, HOY)
    r = client.get(f"{API}/{p['id_producto']}/stock", headers=operador_headers)
    assert r.status_code == 200, r.text
    s = r.json()
    assert [x["id_lote"] for x in s["lotes"]] == [
        vencido["id_lote"],
        hoy_lote["id_lote"],
        lejos["id_lote"],
        sin_fecha["id_lote"],
    ]
    assert [x["vencido"] for x in s["lotes"]] == [True, False, False, False]
    assert s["stock_total"] == 28 and s["stock_disponible"] == 25 and s["stock_vencido"] == 3
    assert s["bajo_minimo"] is True and s["codigo"] == "P-1"
    assert client.get(f"{API}/999/stock", headers=admin_headers).status_code == 404

    # Con mínimo 26: el total (28) lo cubre, pero 3 están vencidos y no se pueden vender.
    client.patch(f"{API}/{p['id_producto']}", json={"stock_minimo": 26}, headers=admin_headers)
    d = client.get(f"{API}/{p['id_producto']}", headers=admin_headers).json()
    assert (d["stock_total"], d["stock_disponible"], d["bajo_minimo"]) == (28, 25, True)
    (item,) = client.get(API, params={"bajo_minimo": "true"}, headers=admin_headers).json()["items"]
    assert item["id_producto"] == p["id_producto"] and item["stock_disponible"] == 25
    client.patch(f"{API}/{p['id_producto']}", json={"stock_minimo": 25}, headers=admin_headers)
    assert client.get(f"{API}/{p['id_producto']}/stock", headers=admin_headers).json()["bajo_minimo"] is False


def test_paginas_y_filtros_coinciden_con_el_calculo_directo(
    client: TestClient, admin_headers: H, engine: Engine
) -> None:
    """El listado agrega el stock solo de la página (LATERAL); debe dar lo mismo que agregar todo."""
    from inventario.demo import generate

    generate(engine, 45, 3, 300, seed=5)
    with engine.begin() as conn:
        conn.execute(text("UPDATE productos SET activo = false WHERE id_producto % 7 = 0"))
        conn.execute(text("UPDATE productos SET stock_minimo = 10000 WHERE id_producto % 5 = 0"))
        conn.execute(text("SET LOCAL TIME ZONE 'America/Mexico_City'"))  # el "hoy" del servicio
        expected = conn.execute(
            text(
                "SELECT p.codigo, coalesce(sum(l.cantidad), 0) AS stock, count(l.id_lote) AS n, p.activo, "
                # Lo vencido no cuenta para el mínimo.
                "coalesce(sum(l.cantidad) FILTER (WHERE l.fecha_vencimiento IS NULL "
                "OR l.fecha_vencimiento >= CURRENT_DATE), 0) < p.stock_minimo AS bajo "
                "FROM productos p LEFT JOIN lotes l USING (id_producto) "
                "GROUP BY p.id_producto ORDER BY p.nombre, p.id_producto"
            )
        ).all()
    for filtros, keep in (
        ({}, lambda r: True),
        ({"activo": "true"}, lambda r: r.activo),
        ({"bajo_minimo": "true"}, lambda r: r.bajo),
        ({"bajo_minimo": "false", "activo": "false"}, lambda r: not r.bajo and not r.activo),
    ):
        want = [(r.codigo, r.stock, r.n, r.bajo) for r in expected if keep(r)]
        got: list[tuple] = []
        for offset in range(0, len(want) + 7, 7):
            body = client.get(
                API, params={**filtros, "limit": 7, "offset": offset}, headers=admin_headers
            ).json()
            assert body["total"] == len(want), filtros
            got += [
                (p["codigo"], p["stock_total"], p["cantidad_lotes"], p["bajo_minimo"]) for p in body["items"]
            ]
        assert got == want, filtros
