"""Un cliente anónimo contra el servicio real: tokens falsos, URLs y cabeceras enormes, cuerpos
enormes y el login (freno, enumeración de cuentas, cabeceras X-Forwarded-For falsas)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import jwt

from tests.adversarial.conftest import ADMIN_PASSWORD, MAX_CLIENTE, Objetivo
from tests.adversarial.rutas import PUBLICAS, rutas

LOGIN = "/api/v1/auth/login"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _tokens(objetivo: Objetivo) -> dict[str, str]:
    """Tokens que el servicio debe rechazar todos con 401."""
    key = (objetivo.data / "secret_key").read_text().strip()
    now = datetime.now(UTC)
    ok = {"sub": "1", "rol": "ADMIN", "iat": now, "exp": now + timedelta(minutes=5)}
    return {
        "basura": "basura",
        "alg=none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': '1', 'rol': 'ADMIN', 'exp': 9999999999})}.",
        "otra clave": jwt.encode(ok, "otra-clave-de-un-atacante-con-32-bytes", algorithm="HS256"),
        "HS512": jwt.encode(ok, key, algorithm="HS512"),
        "vencido": jwt.encode({**ok, "exp": now - timedelta(minutes=1)}, key, algorithm="HS256"),
        "sin exp": jwt.encode({"sub": "1", "rol": "ADMIN"}, key, algorithm="HS256"),
        "sub enorme": jwt.encode({**ok, "sub": "9" * 40}, key, algorithm="HS256"),
        "sub texto": jwt.encode({**ok, "sub": "admin"}, key, algorithm="HS256"),
        "sub número": jwt.encode({**ok, "sub": 1}, key, algorithm="HS256"),
        "sub inexistente": jwt.encode({**ok, "sub": "424242"}, key, algorithm="HS256"),
        "largo": "a" * 7000,
    }


def test_tokens_falsos_vencidos_y_alg_none_son_401_en_cada_ruta(objetivo: Objetivo) -> None:
    tokens = _tokens(objetivo)
    with objetivo.cliente() as c:
        protegidas = [r for r in rutas(c) if (r.method, r.template) not in PUBLICAS]
        # En cada ruta, sin token y los de la sonda; todos los demás en una ruta de cada familia
        # sensible (la decisión la toma una sola dependencia común).
        muestra = {
            "/api/v1/backup/listar",
            "/api/v1/backup/{id_backup}/descargar",
            "/api/v1/jobs/{job_id}/ejecutar",
        }
        muestra |= {"/api/v1/usuarios/{id_usuario}", "/api/v1/backup/ejecutar-completo"}
        for ruta in protegidas:
            r = c.request(ruta.method, ruta.path())
            assert r.status_code == 401, (ruta, r.text)
            for nombre, token in tokens.items():
                if ruta.template not in muestra and nombre not in ("alg=none", "vencido"):
                    continue
                r = c.request(ruta.method, ruta.path(), headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 401, (ruta, nombre, r.text)
                assert r.headers["content-type"] == "application/json" and r.json()["detalle"]


def _raw(objetivo: Objetivo, data: bytes) -> bytes:
    """Una petición a mano (lo que un cliente HTTP normal no deja enviar)."""
    parts = urlsplit(objetivo.url)
    chunks = []
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        try:
            s.sendall(data)
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass  # el servidor cortó antes de leerlo todo: lo que respondió, si respondió, está en chunks
    return b"".join(chunks)


def test_url_enorme_no_congela_el_servicio(objetivo: Objetivo) -> None:
    """La sonda: una URL de 15 000 caracteres bloqueaba el servicio 18 s (la limpieza de secretos
    del log era cuadrática). Ahora es un 414 y /health sigue contestando mientras llegan."""
    largas: list[httpx.Response] = []
    salud: list[tuple[int, float]] = []
    fin = threading.Event()

    def atacar() -> None:
        with objetivo.cliente() as c:
            for n in range(100):
                largas.append(c.get(f"/nope{n}?" + "A" * 15_000))
        fin.set()

    hilo = threading.Thread(target=atacar)
    with objetivo.cliente() as c:
        hilo.start()
        while not fin.is_set():
            inicio = time.monotonic()
            salud.append((c.get("/health").status_code, time.monotonic() - inicio))
    hilo.join()
    assert len(largas) == 100 and {r.status_code for r in largas} == {414}
    assert all("URL es demasiado larga" in r.json()["detalle"] for r in largas)
    assert salud and all(code in (200, 503) for code, _ in salud)
    print(
        f"\n/health durante 100 URLs de 15 000 caracteres: {len(salud)} respuestas, máx {max(t for _, t in salud) * 1000:.0f} ms"
    )
    # El log de acceso anotó cada una, acotada (no 15 000 caracteres por línea).
    acceso = (objetivo.logs / "acceso.log").read_text().splitlines()
    nopes = [line for line in acceso if "/nope" in line]
    assert len(nopes) >= 100 and max(map(len, nopes)) < 8_500


def test_cabeceras_y_cuerpos_enormes(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        r = c.get("/health", headers={"X-Relleno": "x" * 9000})
        assert r.status_code == 431 and r.json()["detalle"]
        r = c.get("/api/v1/productos", headers={"Authorization": "Bearer " + "a" * 9000})
        assert r.status_code == 431
        grande = b'{"nombre_usuario": "' + b"a" * (2 * 1024 * 1024) + b'"}'
        r = c.post(LOGIN, content=grande, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "demasiado grande" in r.json()["detalle"]

        def trozos() -> Iterator[bytes]:
            yield b'{"nombre_usuario": "'
            for _ in range(40):
                yield b"a" * 65536
            yield b'"}'

        r = c.post(LOGIN, content=trozos(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        # JSON anidado a 100 000 niveles (200 KB): un error de cliente, no un 500 ni un cuelgue.
        r = c.post(
            LOGIN, content=b"[" * 100_000 + b"]" * 100_000, headers={"Content-Type": "application/json"}
        )
        assert r.status_code in (400, 422) and r.json()["detalle"]
    # Una cabecera de 40 KB o 200 KB a mano: la corta uvicorn (400, más de 32 KB sin terminar) o
    # el límite de la aplicación (431); nunca llega a una ruta.
    for size in (40_000, 200_000):
        respuesta = _raw(
            objetivo, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"b" * size + b"\r\n\r\n"
        )
        assert respuesta == b"" or respuesta.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), respuesta[:200]
    with objetivo.cliente() as c:
        assert c.get("/health").status_code in (200, 503)


def _login(c: httpx.Client, user: str, password: str, **kw: object) -> tuple[int, str]:
    r = c.post(LOGIN, json={"nombre_usuario": user, "password": password}, **kw)  # type: ignore[arg-type]  # opciones de httpx que pasa cada prueba
    return r.status_code, r.text


def test_nadie_deja_fuera_al_admin_ni_averigua_que_cuentas_existen(objetivo: Objetivo) -> None:
    with objetivo.cliente() as atacante:
        respuestas = {
            "desconocido": _login(atacante, "no-existe-nadie", "x"),
            "clave equivocada": _login(atacante, "admin", "x"),
        }
        for _ in range(4):  # la sonda: cinco intentos bastaban para bloquear `admin` 15 min
            _login(atacante, "admin", "adivinanza")
        respuestas["en pausa"] = _login(atacante, "admin", ADMIN_PASSWORD)
        assert len(set(respuestas.values())) == 1, respuestas
        assert respuestas["en pausa"][0] == 401
    # El admin de verdad, desde su equipo, entra.
    with objetivo.cliente() as admin:
        assert _login(admin, "admin", ADMIN_PASSWORD)[0] == 200


def test_repartir_intentos_entre_nombres_o_falsear_x_forwarded_for_no_sirve(objetivo: Objetivo) -> None:
    with objetivo.cliente() as atacante:
        for n in range(MAX_CLIENTE):
            xff = {"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"}
            assert _login(atacante, f"usuario{n}", "x", headers=xff)[0] == 401
        # La dirección real quedó en pausa: ni la contraseña correcta ni otra X-Forwarded-For pasan.
        assert _login(atacante, "admin", ADMIN_PASSWORD, headers={"X-Forwarded-For": "203.0.113.9"})[0] == 401
    sesiones = (objetivo.logs / "sesiones.log").read_text()
    assert "198.51.100." not in sesiones and "203.0.113.9" not in sesiones
