"""Entradas malas que antes daban 500 o una respuesta engañosa: caracteres de control, tokens con
un `sub` imposible, JSON roto, método equivocado, ids con espacios."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from inventario.config import Settings

H = dict[str, str]
CONTROL = ["\x00", "\x01", "\x1b[31m", "\x7f", "\x85", "\u2028", "a\nLOGIN OK usuario=admin"]


@pytest.mark.parametrize("bad", CONTROL)
def test_login_con_caracteres_de_control_es_422(client: TestClient, bad: str) -> None:
    for body in (
        {"nombre_usuario": f"admin{bad}", "password": "x"},
        {"nombre_usuario": "admin", "password": bad},
    ):
        r = client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 422, r.text
        assert "caracteres de control" in r.json()["detalle"]
    r = client.post("/api/v1/auth/login", data={"username": f"admin{bad}", "password": "x"})
    assert r.status_code == 422


def test_textos_de_usuarios_y_productos_sin_control_pero_descripcion_multilinea(
    client: TestClient, admin_headers: H
) -> None:
    base = {"nombre_usuario": "nuevo", "password": "clave-larga-1"}
    for field, value in (
        ("nombre_completo", "Ana\x00"),
        ("nombre_completo", "Ana\nB"),
        ("password", "clave\x00larga"),
    ):
        r = client.post("/api/v1/usuarios", json={**base, field: value}, headers=admin_headers)
        assert r.status_code == 422, r.text
    r = client.post("/api/v1/productos", json={"codigo": "P\x00", "nombre": "x"}, headers=admin_headers)
    assert r.status_code == 422
    r = client.post("/api/v1/productos", json={"codigo": "P-1", "nombre": "x\ty"}, headers=admin_headers)
    assert r.status_code == 422
    r = client.post(
        "/api/v1/productos",
        json={"codigo": "P-1", "nombre": "Arroz", "descripcion": "línea 1\nlínea 2\tcon tab"},
        headers=admin_headers,
    )
    assert r.status_code == 201 and r.json()["descripcion"] == "línea 1\nlínea 2\tcon tab"
    r = client.post(
        "/api/v1/productos",
        json={"codigo": "P-2", "nombre": "Arroz", "descripcion": "nulo\x00"},
        headers=admin_headers,
    )
    assert r.status_code == 422


@pytest.mark.parametrize("query", ["buscar=%00", "buscar=a%0Ab", "buscar=%C2%85", "x=%1b"])
def test_caracteres_de_control_en_la_url_es_422(client: TestClient, admin_headers: H, query: str) -> None:
    r = client.get(f"/api/v1/productos?{query}", headers=admin_headers)
    assert r.status_code == 422 and "caracteres de control" in r.json()["detalle"]
    assert client.get("/api/v1/productos/%00", headers=admin_headers).status_code == 422


def _token(settings: Settings, sub: object, **extra: object) -> dict[str, str]:
    now = datetime.now(UTC)
    payload = {"sub": sub, "rol": "ADMIN", "iat": now, "exp": now + timedelta(minutes=5), **extra}
    return {"Authorization": f"Bearer {jwt.encode(payload, settings.secret_key(), algorithm='HS256')}"}


@pytest.mark.parametrize("sub", ["9" * 30, str(2**63), "0", "-1", " 1", "1.0", "١", "abc", ""])
def test_token_con_sub_imposible_es_401(client: TestClient, settings: Settings, sub: str) -> None:
    for path in ("/api/v1/auth/yo", "/api/v1/productos", "/api/v1/backup/listar"):
        r = client.get(path, headers=_token(settings, sub))
        assert r.status_code == 401, (path, r.text)
        assert r.json()["detalle"] == "Token inválido o vencido"


def test_token_con_sub_de_otro_tipo_o_firma_rara_es_401(client: TestClient, settings: Settings) -> None:
    for sub in (1, ["1"], {"id": 1}, None):
        assert client.get("/api/v1/auth/yo", headers=_token(settings, sub)).status_code == 401
    for raw in ("a.b.c", "eyJ.eyJ.x", "\u00e9.\u00e9.\u00e9", "." * 50, "x" * 4000):
        r = client.get("/api/v1/auth/yo", headers={"Authorization": f"Bearer {raw}".encode()})
        assert r.status_code == 401, raw


def test_json_roto_dice_donde_no_que_campo(client: TestClient, admin_headers: H) -> None:
    r = client.post(
        "/api/v1/productos",
        content=b'{"codigo": "P-1", "nombre": ',
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    detalle = r.json()["detalle"]
    assert "el cuerpo no es JSON válido (cerca del carácter" in detalle and "27:" not in detalle


def test_metodo_equivocado_en_ruta_fija_es_405(client: TestClient, admin_headers: H) -> None:
    for method, path in (
        ("GET", "/api/v1/backup/ejecutar"),
        ("GET", "/api/v1/backup/limpiar"),
        ("GET", "/api/v1/notificaciones/leer-todas"),
        ("DELETE", "/api/v1/backup/ejecutar-completo"),
    ):
        r = client.request(method, path, headers=admin_headers)
        assert r.status_code == 405, (method, path, r.text)
        assert "Método no permitido" in r.json()["detalle"] and "POST" in r.headers["allow"]
    # Un id de verdad mal escrito sigue siendo 422.
    assert client.get("/api/v1/backup/abc", headers=admin_headers).status_code == 422


@pytest.mark.parametrize("raw", ["%201", "1%20", "+1", "1_0", "%D9%A1", "0x1"])
def test_id_en_la_ruta_solo_digitos(client: TestClient, admin_headers: H, raw: str) -> None:
    r = client.get(f"/api/v1/usuarios/{raw}", headers=admin_headers)
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/usuarios/1", headers=admin_headers).status_code == 200
