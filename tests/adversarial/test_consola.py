"""La consola web (`/consola`) contra el servicio real: sin sesión, con cookies falsificadas o de
un OPERADOR, y con entradas malas en sus formularios. Ningún 5xx, nada de ADMIN para quien no lo es."""

from __future__ import annotations

import re

from tests.adversarial.conftest import Objetivo
from tests.adversarial.test_anonimo import _tokens

RAIZ = "/consola"
PAGINAS = ["", "/panel", "/backups", "/backups/1", "/backups/1/descargar", "/tareas", "/notificaciones"]
PAGINAS += ["/inventario", "/usuarios"]
SOLO_ADMIN = ["/panel", "/backups", "/backups/1", "/backups/1/descargar", "/tareas", "/usuarios"]
ACCIONES = ["/salir", "/backups/ejecutar", "/backups/1/email", "/backups/1/verificar", "/tareas/x/ejecutar"]
ACCIONES += ["/notificaciones/1/leida", "/notificaciones/leer-todas", "/usuarios", "/usuarios/1/desactivar"]
ACCIONES += ["/usuarios/1/activar", "/usuarios/1/password"]


def test_sin_sesion_o_con_cookie_falsa_no_entra(objetivo: Objetivo) -> None:
    cookies = {"": None, **{n: t for n, t in _tokens(objetivo).items() if n != "largo"}}
    with objetivo.cliente() as c:
        for nombre, token in cookies.items():
            c.cookies.clear()
            if token is not None:
                c.cookies.set("consola_sesion", token)
            for pagina in PAGINAS:
                r = c.get(RAIZ + pagina)
                assert r.status_code < 500, (nombre, pagina, r.status_code)
                assert r.status_code != 200 or "entrar" in str(r.url), (nombre, pagina)
                assert r.status_code in (303, 401, 403) or "entrar" in str(r.url), (
                    nombre,
                    pagina,
                    r.status_code,
                )
            for accion in ACCIONES:  # sin token CSRF ni sesión: nada se ejecuta
                r = c.post(RAIZ + accion, data={"nombre_usuario": "x", "password": "clave-larga-1"})
                assert r.status_code < 500 and r.status_code != 200, (nombre, accion, r.status_code)


def _entrar(c, usuario: str, password: str) -> int:  # type: ignore[no-untyped-def]
    form = c.get(RAIZ + "/entrar")
    csrf = re.search(r'name="csrf"\s+value="([^"]+)"', form.text) or re.search(
        r'value="([^"]+)"\s+name="csrf"', form.text
    )
    data = {"nombre_usuario": usuario, "password": password}
    if csrf:
        data["csrf"] = csrf.group(1)
    return int(c.post(RAIZ + "/entrar", data=data).status_code)


def test_formulario_de_entrada_con_entradas_malas(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        for usuario, password in (
            ("admin\x00", "x"),
            ("a\nLOGIN OK", "x"),
            ("x" * 5000, "y"),
            ("admin", "\x1b[2J"),
        ):
            status = _entrar(c, usuario, password)
            assert 400 <= status < 500, (usuario[:20], status)


def test_operador_no_ve_paginas_de_admin(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        c.cookies.set("consola_sesion", objetivo.operador["Authorization"].removeprefix("Bearer "))
        for pagina in SOLO_ADMIN:
            r = c.get(RAIZ + pagina)
            assert r.status_code in (303, 401, 403), (pagina, r.status_code)
