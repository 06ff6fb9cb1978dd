"""El freno de login: un atacante no puede dejar fuera al administrador ni averiguar qué cuentas
existen (misma respuesta y mismo trabajo para usuario desconocido, contraseña equivocada, usuario
inactivo y acceso en pausa), y no puede probar sin límite repartiendo intentos entre nombres."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from inventario.modules.usuarios import service
from inventario.modules.usuarios.throttle import LoginThrottle
from tests.conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.lento

URL = "/api/v1/auth/login"


def _attempt(client: TestClient, user: str, password: str) -> tuple[int, dict]:
    r = client.post(URL, json={"nombre_usuario": user, "password": password})
    return r.status_code, r.json()


def test_misma_respuesta_y_mismo_trabajo_en_todo_fallo(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    r = client.post(
        "/api/v1/usuarios",
        json={"nombre_usuario": "baja", "password": "clave-de-baja", "rol": "OPERADOR"},
        headers=admin_headers,
    )
    client.patch(f"/api/v1/usuarios/{r.json()['id_usuario']}", json={"activo": False}, headers=admin_headers)
    calls: list[bool] = []
    real = service.verify_password

    def counting(password: str, hashed: str | None) -> bool:
        calls.append(hashed is None)
        return real(password, hashed)

    monkeypatch.setattr(service, "verify_password", counting)
    atacante = TestClient(client.app, client=("10.9.9.9", 1))
    answers = {
        "desconocido": _attempt(atacante, "no-existe", "x"),
        "equivocada": _attempt(atacante, "admin", "x"),
        "inactivo": _attempt(atacante, "baja", "clave-de-baja"),
    }
    for _ in range(4):
        _attempt(atacante, "admin", "x")
    answers["en pausa"] = _attempt(atacante, "admin", ADMIN_PASSWORD)
    assert len({str(a) for a in answers.values()}) == 1, answers
    assert answers["en pausa"][0] == 401
    # Una verificación argon2 por intento, también sin usuario (contra el hash de relleno) y en pausa.
    assert len(calls) == 8
    assert calls[0] is True and not any(calls[1:])


def test_nadie_deja_fuera_al_admin_desde_otra_direccion(client: TestClient) -> None:
    atacante = TestClient(client.app, client=("203.0.113.7", 1))
    for _ in range(30):  # la sonda: intentos sin fin contra `admin`
        assert _attempt(atacante, "admin", "adivinanza")[0] == 401
    assert _attempt(atacante, "admin", ADMIN_PASSWORD)[0] == 401
    login(client, "admin", ADMIN_PASSWORD)
    login(TestClient(client.app, client=("198.51.100.1", 1)), "admin", ADMIN_PASSWORD)


def test_repartir_intentos_entre_nombres_tambien_se_frena(client: TestClient) -> None:
    atacante = TestClient(client.app, client=("203.0.113.8", 1))
    for n in range(20):  # LOGIN_MAX_INTENTOS_CLIENTE, cada nombre una sola vez
        assert _attempt(atacante, f"usuario{n}", "x")[0] == 401
    # La dirección queda en pausa para cualquier cuenta, aunque traiga la contraseña correcta.
    assert _attempt(atacante, "admin", ADMIN_PASSWORD)[0] == 401
    login(client, "admin", ADMIN_PASSWORD)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_freno_ventana_pausa_y_memoria_acotada() -> None:
    clock = _Clock()
    throttle = LoginThrottle(3, 5, 60, max_entries=100, clock=clock)
    for _ in range(2):
        throttle.failure("Ana", "1.1.1.1")
    clock.now += 61  # fuera de la ventana: los fallos viejos no cuentan
    throttle.failure("ana", "1.1.1.1")
    assert not throttle.blocked("ana", "1.1.1.1")
    throttle.failure("ANA", "1.1.1.1")
    throttle.failure("ana", "1.1.1.1")
    assert throttle.blocked("ana", "1.1.1.1") and not throttle.blocked("ana", "2.2.2.2")
    assert not throttle.blocked("otro", "1.1.1.1")
    clock.now += 61
    assert not throttle.blocked("ana", "1.1.1.1")
    # Un éxito borra la cuenta+cliente, no los fallos del cliente contra otras cuentas.
    for name in ("a", "b", "c", "d"):
        throttle.failure(name, "3.3.3.3")
    throttle.success("e", "3.3.3.3")
    throttle.failure("f", "3.3.3.3")
    assert throttle.blocked("e", "3.3.3.3")
    for n in range(1000):
        throttle.failure(f"u{n}", f"10.0.{n // 256}.{n % 256}")
    assert len(throttle._entries) <= 100
