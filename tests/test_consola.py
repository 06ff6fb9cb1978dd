"""Consola web (`/consola`) con el cliente en proceso: sesión, CSRF, roles y que cada acción deja
los mismos registros que la API. Los escenarios en un navegador real: test_consola_navegador.py."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_h
from hypothesis import strategies as st
from sqlalchemy import select

from inventario.config import Settings
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.planificador.model import EjecucionJob
from inventario.postgres import DatabaseServer
from tests.conftest import ADMIN_PASSWORD, login
from tests.consola_support import aviso, csrf_de, entrar


def test_sin_sesion_lleva_a_entrar(client: TestClient) -> None:
    for ruta in ("/consola", "/consola/panel", "/consola/inventario", "/consola/backups/1/descargar"):
        r = client.get(ruta, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/consola/entrar", ruta


def test_cookie_de_sesion(client: TestClient, settings: Settings) -> None:
    r = client.post(
        "/consola/entrar",
        data={"csrf": csrf_de(client), "nombre_usuario": "admin", "password": "mala"},
        follow_redirects=False,
    )
    assert r.status_code == 401
    assert "Usuario o contraseña incorrectos" in r.text
    assert "consola_sesion" not in r.headers.get("set-cookie", "")
    entrar(client)
    r = client.post(
        "/consola/entrar",
        data={"csrf": csrf_de(client), "nombre_usuario": "admin", "password": ADMIN_PASSWORD},
        follow_redirects=False,
    )
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("consola_sesion="))
    partes = {p.strip().split("=")[0].lower(): p for p in cookie.split(";")}
    assert "httponly" in partes
    assert partes["samesite"].split("=")[1].lower() == "strict"
    assert partes["max-age"].split("=")[1] == str(settings.TOKEN_MINUTOS * 60)
    assert "secure" not in partes  # servido por HTTP


def test_cookie_secure_por_https(settings: Settings, fresh_db: DatabaseServer) -> None:
    from inventario.main import create_app

    app = create_app(settings, server=fresh_db, with_scheduler=False)
    with TestClient(app, base_url="https://testserver") as client:
        r = client.post(
            "/consola/entrar",
            data={"csrf": csrf_de(client), "nombre_usuario": "admin", "password": ADMIN_PASSWORD},
            follow_redirects=False,
        )
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("consola_sesion="))
        assert "secure" in cookie.lower()


def test_mismo_bloqueo_que_la_api(client: TestClient, settings: Settings) -> None:
    for _ in range(settings.LOGIN_MAX_INTENTOS):
        r = client.post(
            "/consola/entrar",
            data={"csrf": csrf_de(client), "nombre_usuario": "admin", "password": "mala"},
        )
        assert r.status_code == 401 and "se pausa" in r.text
    # En pausa por la consola: la API tampoco deja entrar desde este equipo, ni con la contraseña buena.
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 401
    r = client.post(
        "/consola/entrar",
        data={"csrf": csrf_de(client), "nombre_usuario": "admin", "password": ADMIN_PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 401 and "consola_sesion" not in r.headers.get("set-cookie", "")


def test_formulario_sin_csrf_rechazado(client: TestClient) -> None:
    entrar(client)
    datos = {"nombre_usuario": "intruso", "password": "contraseña-larga", "rol": "ADMIN"}
    for extra in ({}, {"csrf": "0" * 64}):
        r = client.post("/consola/usuarios", data={**datos, **extra}, follow_redirects=False)
        assert r.status_code == 403
        assert "CSRF" in r.text and "Traceback" not in r.text
    # El token de otra sesión tampoco sirve.
    otro = TestClient(client.app)
    ajeno = csrf_de(otro)
    r = client.post("/consola/usuarios", data={**datos, "csrf": ajeno}, follow_redirects=False)
    assert r.status_code == 403
    headers = login(client, "admin", ADMIN_PASSWORD)
    nombres = [u["nombre_usuario"] for u in client.get("/api/v1/usuarios", headers=headers).json()["items"]]
    assert "intruso" not in nombres
    # Entrar también exige el token: nadie puede iniciar una sesión desde otro sitio.
    r = client.post("/consola/entrar", data={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 403


def _operador(client: TestClient) -> None:
    headers = login(client, "admin", ADMIN_PASSWORD)
    r = client.post(
        "/api/v1/usuarios",
        json={"nombre_usuario": "operador1", "password": "operador-secreto", "rol": "OPERADOR"},
        headers=headers,
    )
    assert r.status_code == 201


def test_operador_solo_inventario_y_notificaciones(client: TestClient) -> None:
    _operador(client)
    entrar(client, "operador1", "operador-secreto")
    r = client.get("/consola", follow_redirects=False)
    assert r.headers["location"] == "/consola/inventario"
    for ruta in ("/consola/inventario", "/consola/notificaciones"):
        r = client.get(ruta)
        assert r.status_code == 200
        assert 'href="/consola/backups"' not in r.text and 'href="/consola/usuarios"' not in r.text
    for ruta in (
        "/consola/panel",
        "/consola/backups",
        "/consola/tareas",
        "/consola/usuarios",
        "/consola/backups/1",
    ):
        r = client.get(ruta)
        assert r.status_code == 403, ruta
        assert "solo para administradores" in r.text
    csrf = csrf_de(client, "/consola/inventario")
    r = client.post("/consola/backups/ejecutar", data={"csrf": csrf, "tipo": "COMPLETO"})
    assert r.status_code == 403
    r = client.post("/consola/tareas/alertas_diarias/ejecutar", data={"csrf": csrf})
    assert r.status_code == 403


def test_paginas_sin_recursos_externos(client: TestClient) -> None:
    entrar(client)
    for ruta in ("panel", "backups", "tareas", "notificaciones", "inventario", "usuarios"):
        r = client.get(f"/consola/{ruta}")
        assert r.status_code == 200
        assert "default-src 'self'" in r.headers["content-security-policy"]
        for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
            assert url.startswith("/consola"), (ruta, url)
        assert "<script" not in r.text
    css = client.get("/consola/estaticos/consola.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_errores_como_paginas(client: TestClient) -> None:
    entrar(client)
    casos = [
        ("/consola/backups/999", 404, "No existe el backup 999"),
        ("/consola/backups?tipo=OTRO", 422, "Tipo desconocido"),
        ("/consola/backups?desde=ayer", 422, "no es válida"),
        ("/consola/backups?desde=2025-02-30", 422, "no es válida"),
        # Las mismas reglas que la API (inventario/fechas.py): un rango vacío es un error.
        ("/consola/backups?desde=2025-03-02&hasta=2025-03-01", 422, "anterior o igual"),
        ("/consola/notificaciones?p=0", 422, "Datos inválidos"),
        ("/consola/no-existe", 404, "Página no encontrada"),
    ]
    for ruta, status, texto in casos:
        r = client.get(ruta)
        assert r.status_code == status, ruta
        assert "text/html" in r.headers["content-type"] and texto in r.text, ruta
    # La API sigue respondiendo JSON.
    r = client.get("/api/v1/no-existe")
    assert r.json() == {"detalle": "Recurso no encontrado"}


def test_notificaciones_marcar(client: TestClient) -> None:
    headers = login(client, "admin", ADMIN_PASSWORD)
    ids = []
    for semaforo in ("ROJO", "AMARILLO", "VERDE"):
        r = client.post(
            "/api/v1/notificaciones",
            json={"tipo": "PRUEBA", "titulo": f"Aviso {semaforo}", "mensaje": "x", "semaforo": semaforo},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id_notificacion"])
    entrar(client)
    r = client.get("/consola/notificaciones?semaforo=ROJO&leida=no")
    assert "Aviso ROJO" in r.text and "Aviso AMARILLO" not in r.text
    panel = client.get("/consola/panel").text
    assert "1 en ROJO, 1 en AMARILLO" in panel
    csrf = csrf_de(client, "/consola/notificaciones")
    r = client.post(f"/consola/notificaciones/{ids[0]}/leida", data={"csrf": csrf})
    assert "«Aviso ROJO» leída" in aviso(r.text)
    estado = client.get(f"/api/v1/notificaciones/{ids[0]}", headers=headers).json()
    assert estado["leida"] is True and estado["fecha_lectura"]
    r = client.post("/consola/notificaciones/leer-todas", data={"csrf": csrf})
    assert aviso(r.text) == "2 notificaciones marcadas como leídas"
    assert client.get("/api/v1/notificaciones?leida=false", headers=headers).json()["total"] == 0


def test_inventario(client: TestClient, settings: Settings) -> None:
    headers = login(client, "admin", ADMIN_PASSWORD)
    hoy = datetime.now(settings.tz).date()  # el "hoy" de la tienda, no el del reloj en UTC

    def producto(codigo: str, minimo: int) -> int:
        r = client.post(
            "/api/v1/productos",
            json={"codigo": codigo, "nombre": f"Producto {codigo}", "stock_minimo": minimo},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id_producto"])

    def lote(id_producto: int, codigo: str, vence: date, cantidad: int) -> None:
        r = client.post(
            "/api/v1/lotes",
            json={
                "id_producto": id_producto,
                "codigo_lote": codigo,
                "fecha_vencimiento": vence.isoformat(),
                "cantidad": cantidad,
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text

    a, b = producto("A1", 100), producto("B1", 1)
    lote(a, "VENCIDO", hoy - timedelta(days=3), 5)
    lote(a, "PRONTO", hoy + timedelta(days=10), 5)
    lote(b, "LEJOS", hoy + timedelta(days=300), 5)
    lote(b, "VACIO", hoy + timedelta(days=2), 0)
    entrar(client)
    html = client.get("/consola/inventario").text
    lotes = html.split('id="lotes"')[1].split('id="bajo-minimo"')[0]
    assert "VENCIDO" in lotes and "Vencido hace 3" in lotes and "PRONTO" in lotes
    assert "LEJOS" not in lotes and "VACIO" not in lotes and "Producto A1" in lotes
    bajo = html.split('id="bajo-minimo"')[1]
    assert "Producto A1" in bajo and "Producto B1" not in bajo


def test_usuarios_crear_cambiar_desactivar(client: TestClient) -> None:
    entrar(client)
    csrf = csrf_de(client, "/consola/usuarios")
    datos = {"csrf": csrf, "nombre_usuario": "cajera", "password": "corta", "rol": "OPERADOR"}
    r = client.post("/consola/usuarios", data=datos)
    # El mismo mensaje que la API, con el límite: no solo "es demasiado corto".
    api = client.post(
        "/api/v1/usuarios",
        json={k: v for k, v in datos.items() if k != "csrf"},
        headers=login(client, "admin", ADMIN_PASSWORD),
    )
    assert api.status_code == 422 and api.json()["errores"] == ["password: debe tener al menos 8 caracteres"]
    assert aviso(r.text) == api.json()["detalle"] == "Datos inválidos: " + api.json()["errores"][0]
    r = client.post("/consola/usuarios", data={**datos, "password": "cajera-secreta"})
    assert aviso(r.text) == "Usuario cajera (OPERADOR) creado"
    r = client.post("/consola/usuarios", data={**datos, "password": "cajera-secreta"})
    assert "Ya existe" in aviso(r.text)
    headers = login(client, "admin", ADMIN_PASSWORD)
    usuarios = client.get("/api/v1/usuarios", headers=headers).json()["items"]
    cajera = next(u for u in usuarios if u["nombre_usuario"] == "cajera")
    r = client.post(
        f"/consola/usuarios/{cajera['id_usuario']}/password",
        data={"csrf": csrf, "password": "otra-clave-larga"},
    )
    assert "Contraseña de cajera cambiada" in aviso(r.text)
    assert login(client, "cajera", "otra-clave-larga")
    r = client.post(f"/consola/usuarios/{cajera['id_usuario']}/desactivar", data={"csrf": csrf})
    assert aviso(r.text) == "Usuario cajera desactivado"
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": "cajera", "password": "otra-clave-larga"})
    assert r.status_code == 401


def test_nunca_sin_admin(client: TestClient) -> None:
    headers = login(client, "admin", ADMIN_PASSWORD)
    yo = client.get("/api/v1/auth/yo", headers=headers).json()
    for cambio in ({"activo": False}, {"rol": "OPERADOR"}):
        r = client.patch(f"/api/v1/usuarios/{yo['id_usuario']}", json=cambio, headers=headers)
        assert r.status_code == 409 and "único ADMIN activo" in r.json()["detalle"]
    entrar(client)
    r = client.post(
        f"/consola/usuarios/{yo['id_usuario']}/desactivar",
        data={"csrf": csrf_de(client, "/consola/usuarios")},
    )
    assert "único ADMIN activo" in aviso(r.text)
    # Con otro ADMIN activo, sí.
    r = client.post(
        "/api/v1/usuarios",
        json={"nombre_usuario": "admin2", "password": "admin2-secreto", "rol": "ADMIN"},
        headers=headers,
    )
    otro = r.json()["id_usuario"]
    r = client.patch(f"/api/v1/usuarios/{otro}", json={"rol": "OPERADOR"}, headers=headers)
    assert r.status_code == 200
    r = client.patch(f"/api/v1/usuarios/{otro}", json={"rol": "ADMIN"}, headers=headers)
    r = client.patch(f"/api/v1/usuarios/{yo['id_usuario']}", json={"activo": False}, headers=headers)
    assert r.status_code == 200


def test_tarea_ejecutar_ahora_deja_el_usuario(client: TestClient) -> None:
    entrar(client)
    r = client.post(
        "/consola/tareas/alertas_diarias/ejecutar", data={"csrf": csrf_de(client, "/consola/tareas")}
    )
    assert aviso(r.text).startswith("alertas_diarias: OK")
    app: Any = client.app
    with app.state.session_factory() as session:
        corrida = session.scalars(select(EjecucionJob).where(EjecucionJob.job_id == "alertas_diarias")).one()
        assert corrida.ejecutado_por == "admin" and corrida.manual
    r = client.post("/consola/tareas/no_existe/ejecutar", data={"csrf": csrf_de(client, "/consola/tareas")})
    assert "no_existe" in aviso(r.text)
    assert 'id="tarea-alertas_diarias"' in r.text and "manual, admin" in r.text


def test_panel_rojo_con_directorio_inutilizable(
    settings: Settings, fresh_db: DatabaseServer, tmp_path: Path
) -> None:
    from inventario.main import create_app

    archivo = tmp_path / "no-es-un-directorio"
    archivo.write_text("x")
    roto = settings.model_copy(update={"BACKUP_PATH": str(archivo)})
    with TestClient(create_app(roto, server=fresh_db, with_scheduler=False)) as client:
        entrar(client)
        html = client.get("/consola/panel").text
        general = re.search(r'id="semaforo">\s*<h2>Estado de la instalación: <span class="luz (\w+)"', html)
        assert general is not None and general.group(1) == "rojo"
        assert "El directorio de backups no es utilizable" in html


@pytest.mark.parametrize("tipo", ["", "OTRO", "AUTO"])
def test_ejecutar_backup_tipo_no_permitido(client: TestClient, tipo: str) -> None:
    entrar(client)
    r = client.post(
        "/consola/backups/ejecutar", data={"csrf": csrf_de(client, "/consola/backups"), "tipo": tipo}
    )
    assert r.status_code == 422 and "no permitido" in r.text
    app: Any = client.app
    with app.state.session_factory() as session:
        assert session.scalars(select(HistorialBackup)).first() is None


def test_sesion_vencida_o_usuario_desactivado(client: TestClient, settings: Settings) -> None:
    from inventario.security import create_token

    vencida = create_token(str(settings.SECRET_KEY), 1, "ADMIN", -1)
    client.cookies.set("consola_sesion", vencida, path="/consola")
    r = client.get("/consola/panel")
    assert r.url.path == "/consola/entrar" and "Su sesión venció" in aviso(r.text)
    client.cookies.clear()
    _operador(client)
    entrar(client, "operador1", "operador-secreto")
    assert client.get("/consola/inventario").status_code == 200
    headers = login(client, "admin", ADMIN_PASSWORD)
    yo = next(
        u
        for u in client.get("/api/v1/usuarios", headers=headers).json()["items"]
        if u["nombre_usuario"] == "operador1"
    )
    client.patch(f"/api/v1/usuarios/{yo['id_usuario']}", json={"activo": False}, headers=headers)
    r = client.get("/consola/inventario")
    assert r.url.path == "/consola/entrar"


def test_salir_borra_la_sesion(client: TestClient) -> None:
    entrar(client)
    r = client.post(
        "/consola/salir", data={"csrf": csrf_de(client, "/consola/panel")}, follow_redirects=False
    )
    assert r.status_code == 303 and 'consola_sesion=""' in r.headers["set-cookie"]
    client.cookies.clear()
    assert client.get("/consola/panel", follow_redirects=False).headers["location"] == "/consola/entrar"


@settings_h(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texto=st.text(max_size=120),
    ruta=st.sampled_from(["entrar", "usuarios", "password", "email", "filtro", "backups"]),
)
def test_formularios_con_cualquier_texto_nunca_500(client: TestClient, texto: str, ruta: str) -> None:
    """Cualquier texto (NUL, saltos, emojis, muy largo) en un campo: un mensaje, nunca un 500."""
    if ruta == "entrar":
        r = client.post(
            "/consola/entrar", data={"csrf": csrf_de(client), "nombre_usuario": texto, "password": texto}
        )
    else:
        if "consola_sesion" not in client.cookies:
            entrar(client)
        csrf = csrf_de(client, "/consola/inventario")
        if ruta == "usuarios":
            datos = {
                "csrf": csrf,
                "nombre_usuario": texto,
                "nombre_completo": texto,
                "email": texto,
                "password": texto,
            }
            r = client.post("/consola/usuarios", data={**datos, "rol": texto[:20]})
        elif ruta == "password":
            r = client.post("/consola/usuarios/1/password", data={"csrf": csrf, "password": texto})
        elif ruta == "email":
            r = client.post("/consola/backups/1/email", data={"csrf": csrf, "email_destino": texto})
        elif ruta == "filtro":
            r = client.get("/consola/notificaciones", params={"tipo": texto, "semaforo": texto[:3]})
        else:
            r = client.get("/consola/backups", params={"desde": texto[:10], "estado": texto[:5]})
    assert r.status_code in (200, 401, 403, 404, 409, 413, 414, 422), (ruta, texto, r.status_code)
    assert r.status_code < 500 and "Traceback" not in r.text


def test_server_timing_solo_en_la_consola(client: TestClient) -> None:
    entrar(client)
    r = client.get("/consola/panel")
    assert re.fullmatch(r"app;dur=\d+\.\d", r.headers["server-timing"])
    assert "server-timing" not in client.get("/health").headers
