from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from inventario.config import Settings
from tests.conftest import ADMIN_PASSWORD, login


def test_login_ok_devuelve_token_y_rol(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["rol"] == "ADMIN"
    me = client.get("/api/v1/auth/yo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["nombre_usuario"] == "admin"


FALLO = "Usuario o contraseña incorrectos; tras 5 intentos fallidos seguidos, el acceso desde este equipo se pausa 15 min"


def test_login_fallido_es_401_en_espanol(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": "mala"})
    assert r.status_code == 401
    assert r.json()["detalle"] == FALLO
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": "nadie", "password": "mala"})
    assert r.status_code == 401 and r.json()["detalle"] == FALLO


def test_pausa_tras_intentos_fallidos_solo_para_ese_cliente(client: TestClient) -> None:
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": "mala"})
        assert r.status_code == 401
    # En pausa para este cliente: ni la contraseña correcta entra, con la misma respuesta.
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 401 and r.json()["detalle"] == FALLO
    # Desde otra dirección, el administrador entra: el atacante no lo dejó fuera.
    otro = TestClient(client.app, client=("10.1.2.3", 40000))
    login(otro, "admin", ADMIN_PASSWORD)


def test_sin_token_401_token_invalido_401(client: TestClient) -> None:
    assert client.get("/api/v1/usuarios").status_code == 401
    r = client.get("/api/v1/usuarios", headers={"Authorization": "Bearer basura"})
    assert r.status_code == 401 and r.json()["detalle"] == "Token inválido o vencido"


def test_roles_operador_no_administra_usuarios(client: TestClient, operador_headers: dict[str, str]) -> None:
    r = client.get("/api/v1/usuarios", headers=operador_headers)
    assert r.status_code == 403
    assert r.json()["detalle"] == "Se requiere el rol ADMIN"


def test_usuario_duplicado_409_y_datos_malos_422(client: TestClient, admin_headers: dict[str, str]) -> None:
    data = {"nombre_usuario": "ana", "password": "clave-larga-1"}
    assert client.post("/api/v1/usuarios", json=data, headers=admin_headers).status_code == 201
    r = client.post("/api/v1/usuarios", json=data, headers=admin_headers)
    assert r.status_code == 409 and "Ya existe" in r.json()["detalle"]
    r = client.post("/api/v1/usuarios", json={"nombre_usuario": "x"}, headers=admin_headers)
    assert r.status_code == 422
    assert "password: es obligatorio" in r.json()["detalle"]
    r = client.get("/api/v1/usuarios/99999999999999999999", headers=admin_headers)
    assert r.status_code == 422
    r = client.get("/api/v1/usuarios/424242", headers=admin_headers)
    assert r.status_code == 404


def test_sesiones_log_registra_intentos_sin_contrasenas(client: TestClient, settings: Settings) -> None:
    client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": "clave-equivocada"})
    login(client, "admin", ADMIN_PASSWORD)
    text = (Path(settings.LOGS_PATH) / "sesiones.log").read_text()
    assert "LOGIN FALLIDO usuario=admin" in text and "LOGIN OK usuario=admin" in text
    assert "cliente=testclient" in text
    logs = "".join(p.read_text() for p in Path(settings.LOGS_PATH).glob("*.log"))
    assert ADMIN_PASSWORD not in logs and "clave-equivocada" not in logs


def test_token_de_usuario_desactivado_o_degradado_deja_de_valer_en_la_siguiente_peticion(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """El token se comprueba contra la base en cada petición (una lectura sin transacción): desactivar
    o degradar a alguien vale desde su próxima petición, sin esperar a que venza el token."""
    data = {"nombre_usuario": "bruno", "password": "clave-larga-1", "rol": "ADMIN"}
    r = client.post("/api/v1/usuarios", json=data, headers=admin_headers)
    assert r.status_code == 201, r.text
    id_bruno = r.json()["id_usuario"]
    bruno = login(client, "bruno", "clave-larga-1")
    assert client.get("/api/v1/usuarios", headers=bruno).status_code == 200
    r = client.patch(f"/api/v1/usuarios/{id_bruno}", json={"rol": "OPERADOR"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    # El token aún dice ADMIN; la base, OPERADOR: manda la base.
    r = client.get("/api/v1/usuarios", headers=bruno)
    assert r.status_code == 403 and r.json()["detalle"] == "Se requiere el rol ADMIN"
    assert client.get("/api/v1/productos", headers=bruno).status_code == 200
    r = client.patch(f"/api/v1/usuarios/{id_bruno}", json={"activo": False}, headers=admin_headers)
    assert r.status_code == 200, r.text
    r = client.get("/api/v1/productos", headers=bruno)
    assert r.status_code == 401 and r.json()["detalle"] == "El usuario del token ya no está activo"


def test_mensaje_de_fallo_concuerda_con_el_limite() -> None:
    from inventario.modules.usuarios.service import login_failed_message
    from inventario.modules.usuarios.throttle import LoginThrottle

    assert "tras 1 intento fallido seguido," in login_failed_message(LoginThrottle(1, 10, 900))
    assert "tras 2 intentos fallidos seguidos," in login_failed_message(LoginThrottle(2, 10, 900))
