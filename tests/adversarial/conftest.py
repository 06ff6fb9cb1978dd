"""La suite adversaria: un `inventario serve` de verdad, con su PostgreSQL embebido, en loopback,
atacado como lo haría un cliente anónimo, un OPERADOR y un usuario local de la máquina.

Un solo servicio para toda la suite (arrancarlo cuesta unos segundos). Los atacantes usan otras
direcciones de loopback (127.0.0.x): el freno de login de uno no toca a los demás ni a las
sesiones de las pruebas. Al final, error.log no debe tener ni una traza: ninguna petición llegó a
un error no previsto.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.servicio_support import Servicio, servicio

ADMIN_PASSWORD = "admin-adversario-1"
OPERADOR_PASSWORD = "operador-adversario-1"
MAX_CLIENTE = 8  # LOGIN_MAX_INTENTOS_CLIENTE (20 por defecto): menos intentos, suite más corta
_next_address = itertools.count(10)
_address_lock = threading.Lock()


@dataclass
class Objetivo:
    srv: Servicio
    home: Path
    admin: dict[str, str]
    operador: dict[str, str]
    respuestas: list[tuple[str, str, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.srv.url

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def backups(self) -> Path:
        return self.home / "backups"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def cliente(self, address: str | None = None, **kwargs: object) -> httpx.Client:
        """Un cliente HTTP desde `address` (por defecto, una 127.0.x.y nueva) que anota cada
        respuesta para el recuento final de 5xx."""
        if address is None:
            with _address_lock:
                n = next(_next_address)
                address = f"127.0.{n // 250}.{n % 250 + 2}"

        def anotar(response: httpx.Response) -> None:
            with self._lock:
                self.respuestas.append(
                    (response.request.method, str(response.request.url)[:200], response.status_code)
                )

        return httpx.Client(
            base_url=self.url,
            transport=httpx.HTTPTransport(local_address=address),
            event_hooks={"response": [anotar]},
            timeout=60,
            **kwargs,  # type: ignore[arg-type]  # opciones de httpx.Client de quien llama
        )


def _login(client: httpx.Client, user: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"nombre_usuario": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="package")
def objetivo() -> Iterator[Objetivo]:
    # Fuera de /tmp/pytest-of-root: otra sesión de pytest lo pone en 0700 y el postmaster (usuario
    # pgserver, si corremos como root) dejaría de ver sus datos.
    home = Path(tempfile.mkdtemp(prefix="inventario-adversaria-"))
    home.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PG_BIN_DIR"))}
    env.update(
        DATA_PATH=str(home / "data"),
        BACKUP_PATH=str(home / "backups"),
        LOGS_PATH=str(home / "logs"),
        INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEALTH_DISCO_MIN_MB="0",
        BACKUP_ENABLED="false",
        LOGIN_MAX_INTENTOS_CLIENTE=str(MAX_CLIENTE),
    )
    env.pop("SECRET_KEY", None)  # que la genere y la guarde, como en una instalación nueva
    try:
        # umask 022, el habitual: lo que escriba el servicio debe quedar privado igual.
        with servicio(env, "--sin-scheduler", umask=0o022) as srv:
            with httpx.Client(base_url=srv.url, timeout=60) as local:
                admin = _login(local, "admin", ADMIN_PASSWORD)
                r = local.post(
                    "/api/v1/usuarios",
                    json={"nombre_usuario": "operador", "password": OPERADOR_PASSWORD, "rol": "OPERADOR"},
                    headers=admin,
                )
                assert r.status_code == 201, r.text
                operador = _login(local, "operador", OPERADOR_PASSWORD)
            objetivo = Objetivo(srv, home, admin, operador)
            yield objetivo
        errores = (
            (home / "logs" / "error.log").read_text(errors="replace")
            if (home / "logs" / "error.log").exists()
            else ""
        )
        assert "Traceback" not in errores, errores[-5000:]
        cinco = [r for r in objetivo.respuestas if r[2] >= 500]
        assert not cinco, cinco[:20]
    finally:
        shutil.rmtree(home, ignore_errors=True)
