from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from inventario.errors import Invalido
from inventario.modules.notificaciones.service import create_notification
from tests.crud_support import filas

API = "/api/v1/notificaciones"
H = dict[str, str]


def test_sin_token_401(client: TestClient) -> None:
    for method, path in [
        ("GET", API),
        ("POST", API),
        ("GET", f"{API}/1"),
        ("POST", f"{API}/1/leer"),
        ("POST", f"{API}/leer-todas"),
    ]:
        assert client.request(method, path).status_code == 401, (method, path)


def test_crear_desde_servicio_commit_y_sin_commit(engine: Engine) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as s:
        n = create_notification(
            s,
            tipo="BACKUP",
            titulo="Backup completo",
            mensaje="ok",
            semaforo="VERDE",
            referencia_tipo="BACKUP",
            referencia_id=7,
        )
        assert n.id_notificacion and n.leida is False and n.fecha_creacion is not None
    # commit=False: queda en la transacción de quien llama (tiene id), que decide.
    with factory() as s:
        n2 = create_notification(s, tipo="BACKUP", titulo="Falló", mensaje="", semaforo="ROJO", commit=False)
        assert n2.id_notificacion is not None
        s.rollback()
    with factory() as s:
        create_notification(
            s, tipo="STOCK", titulo="x" * 500, mensaje="a\x00b", semaforo="AMARILLO", commit=False
        )
        s.commit()
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT tipo, titulo, mensaje, semaforo, referencia_id FROM notificaciones ORDER BY 1")
        ).all()
    assert [r.tipo for r in rows] == ["BACKUP", "STOCK"]
    assert rows[0].referencia_id == 7
    # Texto ajeno: se recorta y limpia en vez de perder el aviso.
    assert len(rows[1].titulo) == 200 and rows[1].titulo.endswith("…") and rows[1].mensaje == "ab"
    with factory() as s:
        with pytest.raises(Invalido, match="Semáforo inválido 'AZUL'"):
            create_notification(s, tipo="X", titulo="t", mensaje="", semaforo="AZUL")
        with pytest.raises(Invalido, match="tipo debe tener entre 1 y 30"):
            create_notification(s, tipo="X" * 31, titulo="t", mensaje="", semaforo="ROJO")
    assert len(filas(engine, "notificaciones")) == 2


def test_listar_leer_y_leer_todas(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as s:
        ids = [
            create_notification(s, tipo=t, titulo=f"Aviso {i}", mensaje="m", semaforo=sem).id_notificacion
            for i, (t, sem) in enumerate([("BACKUP", "VERDE"), ("STOCK", "ROJO"), ("STOCK", "AMARILLO")])
        ]

    def listar(**params: object) -> dict:
        r = client.get(API, params=params, headers=operador_headers)
        assert r.status_code == 200, r.text
        return r.json()

    body = listar()
    # La más nueva primero; no_leidas cuenta todas.
    assert [n["id_notificacion"] for n in body["items"]] == ids[::-1]
    assert body["total"] == 3 and body["no_leidas"] == 3
    assert [n["id_notificacion"] for n in listar(tipo="STOCK")["items"]] == [ids[2], ids[1]]
    assert [n["id_notificacion"] for n in listar(semaforo="ROJO")["items"]] == [ids[1]]
    assert listar(tipo="STOCK", semaforo="VERDE")["total"] == 0
    assert listar(tipo="STOCK", semaforo="VERDE")["no_leidas"] == 3  # sin filtros

    r = client.post(f"{API}/{ids[1]}/leer", headers=operador_headers)
    assert r.status_code == 200
    leida = r.json()
    assert leida["leida"] is True and leida["fecha_lectura"] is not None
    # Idempotente: la segunda vez conserva la primera fecha de lectura.
    r = client.post(f"{API}/{ids[1]}/leer", headers=admin_headers)
    assert r.status_code == 200 and r.json()["fecha_lectura"] == leida["fecha_lectura"]
    assert client.get(f"{API}/{ids[1]}", headers=operador_headers).json() == r.json()
    assert [n["id_notificacion"] for n in listar(leida="false")["items"]] == [ids[2], ids[0]]
    assert [n["id_notificacion"] for n in listar(leida="true")["items"]] == [ids[1]]
    assert listar()["no_leidas"] == 2

    r = client.post(f"{API}/leer-todas", headers=operador_headers)
    assert r.status_code == 200 and r.json() == {"marcadas": 2}
    assert client.post(f"{API}/leer-todas", headers=operador_headers).json() == {"marcadas": 0}
    assert listar()["no_leidas"] == 0
    assert (
        client.get(f"{API}/{ids[1]}", headers=operador_headers).json()["fecha_lectura"]
        == leida["fecha_lectura"]
    )

    antes = filas(engine, "notificaciones")
    for method, path, params, status, mensaje in [
        ("GET", f"{API}/999", None, 404, "No existe la notificación 999"),
        ("POST", f"{API}/999/leer", None, 404, "No existe la notificación 999"),
        ("POST", f"{API}/{2**63}/leer", None, 422, "id_notificacion: debe ser menor o igual"),
        ("GET", API, {"semaforo": "AZUL"}, 422, "semaforo: debe ser VERDE, AMARILLO o ROJO"),
        ("GET", API, {"leida": "quizás"}, 422, "leida: debe ser verdadero o falso"),
        ("GET", API, {"tipo": "x" * 31}, 422, "tipo: debe tener como máximo 30 caracteres"),
    ]:
        r = client.request(method, path, params=params, headers=operador_headers)
        assert r.status_code == status and mensaje in r.json()["detalle"], r.text
    assert filas(engine, "notificaciones") == antes


def test_crear_a_mano_solo_admin(
    client: TestClient, admin_headers: H, operador_headers: H, engine: Engine
) -> None:
    aviso = {
        "titulo": "Inventario anual el viernes",
        "mensaje": "Cerramos a las 18 h",
        "semaforo": "AMARILLO",
    }
    r = client.post(API, json=aviso, headers=operador_headers)
    assert r.status_code == 403 and r.json()["detalle"] == "Se requiere el rol ADMIN"
    r = client.post(API, json=aviso, headers=admin_headers)
    assert r.status_code == 201, r.text
    n = r.json()
    assert n["tipo"] == "MANUAL" and n["semaforo"] == "AMARILLO" and n["leida"] is False
    r = client.post(
        API,
        json={
            "titulo": "Lote por vencer",
            "tipo": "LOTE",
            "referencia_tipo": "LOTE",
            "referencia_id": 3,
        },
        headers=admin_headers,
    )
    assert r.status_code == 201 and r.json()["semaforo"] == "VERDE" and r.json()["referencia_id"] == 3

    antes = filas(engine, "notificaciones")
    for body, mensaje in [
        ({}, "titulo: es obligatorio"),
        ({"titulo": "t" * 201}, "titulo: debe tener como máximo 200 caracteres"),
        ({"titulo": "t", "semaforo": "AZUL"}, "semaforo: debe ser VERDE, AMARILLO o ROJO"),
        ({"titulo": "t", "tipo": "minúsculas"}, "tipo: tiene un formato inválido"),
        ({"titulo": "t", "tipo": "T" * 31}, "tipo: debe tener como máximo 30 caracteres"),
        ({"titulo": "t", "referencia_id": 2**63}, "referencia_id: debe ser menor o igual"),
        ({"titulo": "t", "leida": True}, "leida: no es un campo permitido"),
        ({"titulo": "t\x00"}, "titulo: no puede contener caracteres de control (encontrado U+0000)"),
    ]:
        r = client.post(API, json=body, headers=admin_headers)
        assert r.status_code == 422 and mensaje in r.json()["detalle"], (body, r.text)
    assert filas(engine, "notificaciones") == antes
