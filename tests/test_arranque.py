"""La primera hora de un usuario nuevo: lo que `inventario serve` muestra en la consola, los fallos
de arranque en una línea, `/` → `/docs`, /docs y /redoc sin internet y el formulario de Authorize.

Contra un `inventario serve` de verdad en un subproceso: el aviso y los fallos son lo que ve la
consola, y el TestClient no los mostraría."""

from __future__ import annotations

import asyncio
import json
import re
import socket as socket_mod
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from inventario.arranque import puertos_por_worker, reservar_puerto
from inventario.config import Settings
from tests.conftest import ADMIN_PASSWORD
from tests.servicio_support import inventario_exe, puerto_libre, servicio

CDN = re.compile(r"https?://(?!127\.0\.0\.1|localhost)[\w.-]+/", re.I)


def test_aviso_de_inicio_y_segunda_instancia_en_el_mismo_puerto(
    cli_env: dict[str, str], settings: Settings
) -> None:
    env = {**cli_env, "BACKUP_ENABLED": "false"}
    with servicio(env) as srv:
        aviso = "\n".join(srv.aviso)
        port = srv.url.rsplit(":", 1)[1]
        assert f"Dirección:     http://localhost:{port}  (escucha en 127.0.0.1:{port})" in aviso
        assert f"Documentación: http://localhost:{port}/docs" in aviso
        assert f"Consola web:   http://localhost:{port}/consola" in aviso
        # Base externa (la de la prueba): la URL sin clave; backups y logs con su carpeta.
        assert "Base de datos: PostgreSQL externo postgresql://" in aviso
        assert str(settings.backup_dir) in aviso and str(settings.logs_dir) in aviso
        assert "Planificador:  activo (America/Mexico_City): backup_diario 03:00" in aviso
        assert "backups programados apagados (BACKUP_ENABLED)" in aviso
        assert "Avisos:        sin canales (NOTIFICACIONES_EMAIL / NOTIFICACIONES_URLS)" in aviso
        assert "Ctrl+C" in aviso
        password = fresh_password(cli_env)
        if password:
            assert password not in aviso

        # El README muestra este mismo aviso (la primera pantalla de un usuario nuevo).
        readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
        bloque = readme.split("Inventario en marcha\n", 1)[1].split("```", 1)[0].splitlines()
        assert [linea.split(":", 1)[0] for linea in bloque] == [
            linea.split(":", 1)[0] for linea in srv.aviso[1:]
        ]

        r = httpx.get(srv.url + "/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/docs"

        # Una segunda instancia en el mismo puerto: una línea que dice qué pasa y qué hacer, al
        # instante (sin arrancar nada), código 3 y sin traza.
        segunda = subprocess.run(
            [inventario_exe(), "serve", "--host", "127.0.0.1", "--port", port],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert segunda.returncode == 3
        assert segunda.stdout == ""
        (linea,) = segunda.stderr.strip().splitlines()
        assert linea.startswith(f"No se pudo arrancar: El puerto {port} de 127.0.0.1 ya está en uso")
        assert "--port" in linea
        # El primero sigue atendiendo.
        assert httpx.get(srv.url + "/health").status_code in (200, 503)
    # SIGTERM (lo que envía systemd): cierre ordenado, código 0 y una despedida.
    assert srv.proc.returncode == 0
    assert srv.salida.strip().endswith("Inventario detenido.")


def fresh_password(env: dict[str, str]) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(env["DATABASE_URL"]).password


def test_base_inaccesible_una_linea_y_la_traza_en_error_log(
    cli_env: dict[str, str], settings: Settings
) -> None:
    port = puerto_libre()  # nadie escucha allí
    env = {**cli_env, "DATABASE_URL": f"postgresql://inventario:clave-secreta@127.0.0.1:{port}/inventario"}
    r = subprocess.run(
        [inventario_exe(), "serve", "--port", str(puerto_libre())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3
    (linea,) = r.stderr.strip().splitlines()
    assert linea.startswith(
        f"No se pudo arrancar: No se pudo conectar con postgresql://inventario@127.0.0.1:{port}/inventario: "
    ), linea
    assert "DATABASE_URL" in linea and "clave-secreta" not in linea
    error_log = (settings.logs_dir / "error.log").read_text()
    assert "Traceback" in error_log and "clave-secreta" not in error_log


def test_backup_path_sin_permiso_una_linea(cli_env: dict[str, str], tmp_path: Path) -> None:
    archivo = tmp_path / "no-es-carpeta"
    archivo.write_text("x")
    env = {**cli_env, "LOGS_PATH": str(archivo / "logs")}
    r = subprocess.run(
        [inventario_exe(), "serve", "--port", str(puerto_libre())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    lineas = r.stderr.strip().splitlines()
    assert len(lineas) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(archivo) in lineas[0]


def test_docs_y_redoc_sin_cdn(client: TestClient) -> None:
    """Una red sin internet: /docs y /redoc no nombran ningún servidor externo y sus recursos se
    sirven desde el propio servicio."""
    for ruta in ("/docs", "/redoc"):
        html = client.get(ruta)
        assert html.status_code == 200
        assert not CDN.search(html.text), CDN.findall(html.text)
        recursos = re.findall(r'(?:src|href)="(/[^"]+)"', html.text)
        assert recursos, html.text
        for recurso in recursos:
            r = client.get(recurso)
            assert r.status_code == 200 and len(r.content) > 1000, recurso


def test_authorize_con_usuario_y_contrasena(client: TestClient) -> None:
    """El formulario OAuth2 de Authorize (username/password) y el JSON de siempre dan un token."""
    spec = client.get("/openapi.json").json()
    (esquema,) = spec["components"]["securitySchemes"].values()
    assert esquema["type"] == "oauth2"
    assert esquema["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"

    form = client.post(
        "/api/v1/auth/login", data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}
    )
    assert form.status_code == 200, form.text
    assert form.json()["token_type"] == "bearer"
    token = form.json()["access_token"]
    assert (
        client.get("/api/v1/auth/yo", headers={"Authorization": f"Bearer {token}"}).json()["rol"] == "ADMIN"
    )

    json_ = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
    assert json_.status_code == 200
    mal = client.post("/api/v1/auth/login", data={"username": "admin", "password": "otra"})
    assert mal.status_code == 401 and "detalle" in mal.json()
    falta = client.post("/api/v1/auth/login", data={"username": "admin"})
    assert falta.status_code == 422 and "password" in falta.json()["detalle"]


ENGLISH = re.compile(r"\b(List|Get|Create|Update|Delete|Me|Read)\b")


def test_cada_operacion_con_resumen_descripcion_y_codigos(client: TestClient) -> None:
    texto = client.get("/openapi.json").text
    assert "Successful Response" not in texto and "Validation Error" not in texto
    spec = json.loads(texto)
    publicas = {("post", "/api/v1/auth/login"), ("get", "/health")}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary") and not ENGLISH.search(op["summary"]), where
            assert op.get("description"), where
            codigos = set(op["responses"])
            if (method, path) not in publicas:
                assert "401" in codigos, where
            if "{" in path:
                assert "404" in codigos and "422" in codigos, where
            for codigo, resp in op["responses"].items():
                if codigo.startswith(("4", "5")) and "content" in resp:
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
                    assert "detalle" in schema["required"], (where, codigo)


@pytest.mark.parametrize("workers", [1, 2])
def test_conexiones_aceptadas_sin_nagle(workers: int) -> None:
    """Las conexiones que acepta el socket de `reservar_puerto` llevan TCP_NODELAY: con Nagle, cada
    respuesta de una conexión keep-alive (cabeceras y cuerpo en dos escrituras) esperaba el ACK
    retrasado del cliente, ~40 ms por petición (medido: /health de 55 a 12 ms). También los de cada
    worker de `serve --workers N` (`puertos_por_worker`)."""
    sock = reservar_puerto("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sockets = puertos_por_worker(sock, workers) if workers > 1 else [sock]
    vistos: list[int] = []

    async def principal() -> None:
        async def atender(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            aceptado = writer.get_extra_info("socket")
            vistos.append(aceptado.getsockopt(socket_mod.IPPROTO_TCP, socket_mod.TCP_NODELAY))
            writer.close()

        servers = [await asyncio.start_server(atender, sock=s) for s in sockets]
        writers = [(await asyncio.open_connection("127.0.0.1", port))[1] for _ in range(8)]
        for _ in range(100):
            if len(vistos) == len(writers):
                break
            await asyncio.sleep(0.01)
        for writer in writers:
            writer.close()
        for server in servers:
            server.close()

    asyncio.run(principal())
    assert len(vistos) == 8 and all(v != 0 for v in vistos)


def test_titulos_de_campos_con_tildes_en_docs(client: TestClient) -> None:
    """Los nombres de campo del plan van sin tildes (`codigo`, `stock_minimo`); sus títulos en /docs no."""
    from inventario.openapi import TILDES

    spec = client.get("/openapi.json").json()
    campos = spec["components"]["schemas"]["ProductoCrear"]["properties"]
    assert campos["codigo"]["title"] == "Código" and campos["stock_minimo"]["title"] == "Stock Mínimo"
    sin_tilde = re.compile(r"\b(" + "|".join(TILDES) + r")\b", re.IGNORECASE)

    def titulos(nodo: object) -> list[str]:
        if isinstance(nodo, dict):
            propios = [nodo["title"]] if isinstance(nodo.get("title"), str) else []
            return propios + [t for v in nodo.values() for t in titulos(v)]
        if isinstance(nodo, list):
            return [t for v in nodo for t in titulos(v)]
        return []

    assert [t for t in titulos(spec) if sin_tilde.search(t)] == []
