"""Ayudas compartidas de las pruebas."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from inventario.runtime import Runtime

H = dict[str, str]


def crear(client: TestClient, headers: H, **datos: object) -> dict:
    body = {"codigo": "P-1", "nombre": "Paracetamol 500 mg", **datos}
    r = client.post("/api/v1/productos", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def lote(
    client: TestClient, headers: H, id_producto: int, codigo: str, cantidad: int, vence: date | None
) -> dict:
    body = {
        "id_producto": id_producto,
        "codigo_lote": codigo,
        "cantidad": cantidad,
        "fecha_vencimiento": vence.isoformat() if vence else None,
    }
    r = client.post("/api/v1/lotes", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def hoy(engine: Engine) -> date:
    """La fecha de la base: "vencido" se calcula con su CURRENT_DATE, no con el reloj local."""
    with engine.connect() as conn:
        return conn.scalar(text("SELECT CURRENT_DATE"))


def filas(engine: Engine, tabla: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {tabla} ORDER BY 1"))]


def today(runtime: Runtime) -> date:
    with runtime.engine.connect() as conn:
        return conn.execute(text("SELECT CURRENT_DATE")).scalar_one()


def product(
    conn: Connection,
    codigo: str,
    nombre: str,
    stock_minimo: int = 0,
    activo: bool = True,
    unidad: str = "caja",
) -> int:
    return conn.execute(
        text(
            "INSERT INTO productos (codigo, nombre, stock_minimo, activo, unidad) "
            "VALUES (:c, :n, :m, :a, :u) RETURNING id_producto"
        ),
        {"c": codigo, "n": nombre, "m": stock_minimo, "a": activo, "u": unidad},
    ).scalar_one()


def lot(conn: Connection, id_producto: int, codigo: str, vence: date | None, cantidad: int) -> int:
    return conn.execute(
        text(
            "INSERT INTO lotes (id_producto, codigo_lote, fecha_vencimiento, cantidad) "
            "VALUES (:p, :c, :v, :q) RETURNING id_lote"
        ),
        {"p": id_producto, "c": codigo, "v": vence, "q": cantidad},
    ).scalar_one()
