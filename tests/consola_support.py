"""Ayudas compartidas de las pruebas."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_de(client: TestClient, ruta: str = "/consola/entrar") -> str:
    r = client.get(ruta)
    assert r.status_code == 200, r.text
    m = CSRF.search(r.text)
    assert m is not None
    return m.group(1)


def entrar(client: TestClient, usuario: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    r = client.post(
        "/consola/entrar",
        data={"csrf": csrf_de(client), "nombre_usuario": usuario, "password": password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def aviso(html: str) -> str:
    m = re.search(r'class="aviso (?:ok|error)"[^>]*>([^<]*)<', html)
    assert m is not None, html
    return m.group(1)
