"""`GET /health`: sin token, estado de la base, del disco de backups y del planificador; 503 claro
con la base caída (un PostgreSQL real detenido y vuelto a arrancar) y recuperación sola."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inventario.config import Settings
from inventario.postgres import DatabaseServer, pgserver_bin_dir, start_embedded
from tests.conftest import ADMIN_PASSWORD, aplicacion, login

pytestmark = pytest.mark.usefixtures("restore_logging")  # el logging vuelve a como estaba (conftest)


def test_health_sin_token_ok(client: TestClient, settings: Settings) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["estado"] == "OK"
    assert body["base_datos"]["estado"] == "OK"
    assert isinstance(body["base_datos"]["latencia_ms"], float) and body["base_datos"]["latencia_ms"] >= 0
    assert body["base_datos"]["version"].startswith("16")
    disk = body["disco_backups"]
    assert disk["estado"] == "OK" and disk["minimo_mb"] == settings.HEALTH_DISCO_MIN_MB == 0
    assert disk["libre_bytes"] > 0 and disk["total_bytes"] >= disk["libre_bytes"]
    assert disk["ruta"] == str(settings.backup_dir)
    assert body["scheduler"]["estado"] == "OK" and body["scheduler"]["activo"] is False


def test_cada_consulta_escribe_una_linea_en_health_log(client: TestClient, settings: Settings) -> None:
    health_log = Path(settings.LOGS_PATH) / "health.log"
    before = health_log.read_text().splitlines() if health_log.exists() else []
    for _ in range(3):
        assert client.get("/health").status_code == 200
    new = health_log.read_text().splitlines()[len(before) :]
    assert len(new) == 3
    assert all(" INFO [inventario.health] estado=OK base_datos=OK latencia_ms=" in line for line in new)
    assert "inventario.health" not in (Path(settings.LOGS_PATH) / "app.log").read_text()


def test_poco_disco_es_degradado_pero_200(settings: Settings, fresh_db: DatabaseServer) -> None:
    from inventario.main import create_app

    huge = settings.model_copy(update={"HEALTH_DISCO_MIN_MB": 10**12})  # un exabyte
    with TestClient(create_app(huge, server=fresh_db, with_scheduler=False)) as client:
        r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["estado"] == "DEGRADADO" and body["base_datos"]["estado"] == "OK"
    assert body["disco_backups"]["estado"] == "DEGRADADO"
    assert body["disco_backups"]["minimo_mb"] == 10**12
    assert "MB libres para backups (mínimo 1000000000000 MB)" in body["disco_backups"]["mensaje"]
    line = (Path(settings.LOGS_PATH) / "health.log").read_text().splitlines()[-1]
    assert "WARNING" in line and "estado=DEGRADADO" in line and "disco='Quedan" in line


def test_planificador_que_falla_no_da_500(client: TestClient) -> None:
    def broken_scheduler() -> dict:
        raise RuntimeError("planificador roto")

    aplicacion(client).state.scheduler_info = broken_scheduler
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["estado"] == "DEGRADADO"
    assert body["scheduler"]["estado"] == "ERROR"
    assert "No se pudo consultar el planificador" in body["scheduler"]["mensaje"]


class Postmaster:
    """Detiene y arranca de verdad el postmaster de un servidor pgserver, como lo hace pgserver."""

    def __init__(self, server: DatabaseServer) -> None:
        self.handle = server._handle
        info = self.handle.get_postmaster_info()  # type: ignore[attr-defined]  # el handle de pgserver no tiene tipos
        self.pgdata = Path(self.handle.pgdata)  # type: ignore[attr-defined]  # el handle de pgserver no tiene tipos
        self.socket_dir = info.socket_dir
        self.pg_ctl = str(pgserver_bin_dir() / "pg_ctl")
        # Como root, pgserver corre postgres con el usuario del sistema `pgserver`.
        self.user = self.handle.system_user  # type: ignore[attr-defined]  # el handle de pgserver no tiene tipos

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [self.pg_ctl, "-D", str(self.pgdata), *args],
            user=self.user,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def running(self) -> bool:
        result = subprocess.run(
            [self.pg_ctl, "-D", str(self.pgdata), "status"], user=self.user, capture_output=True
        )
        return result.returncode == 0

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"
        )
        from pgserver.utils import PostmasterInfo

        # pgserver detiene al final el postmaster que conoce: que conozca el nuevo.
        self.handle._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)  # type: ignore[attr-defined]  # el handle de pgserver no tiene tipos


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[DatabaseServer, Postmaster]]:
    """Un PostgreSQL propio para esta prueba: detenerlo no afecta a las demás."""
    server = start_embedded(tmp_path / "pg2")
    postmaster = Postmaster(server)
    try:
        yield server, postmaster
    finally:
        if not postmaster.running():
            postmaster.start()
        server.stop()
        assert not postmaster.running()


def test_base_caida_503_y_recuperacion(
    own_server: tuple[DatabaseServer, Postmaster], settings: Settings
) -> None:
    from inventario.main import create_app

    server, postmaster = own_server
    app = create_app(settings, server=server, with_scheduler=False)
    with TestClient(app) as client:
        headers = login(client, "admin", ADMIN_PASSWORD)
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/auth/yo", headers=headers).status_code == 200

        postmaster.stop()
        r = client.get("/health")
        assert r.status_code == 503
        body = r.json()
        assert body["estado"] == "ERROR"
        assert body["base_datos"]["estado"] == "ERROR"
        assert body["base_datos"]["mensaje"].startswith("Base de datos no disponible")
        assert body["disco_backups"]["estado"] == "OK"  # las demás secciones siguen informando
        # Un endpoint normal, autenticado: 503 con mensaje en español, no un 500.
        r = client.get("/api/v1/auth/yo", headers=headers)
        assert r.status_code == 503
        assert r.json() == {"detalle": "Base de datos no disponible; intente más tarde"}
        r = client.post("/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 503

        postmaster.start()
        r = client.get("/health")
        assert r.status_code == 200 and r.json()["base_datos"]["estado"] == "OK"
        me = client.get("/api/v1/auth/yo", headers=headers)
        assert me.status_code == 200 and me.json()["nombre_usuario"] == "admin"
        assert login(client, "admin", ADMIN_PASSWORD)

    logs = Path(settings.LOGS_PATH)
    health = (logs / "health.log").read_text().splitlines()
    states = [line.split("estado=")[1].split()[0] for line in health]
    assert states == ["OK", "ERROR", "OK"]
    assert " ERROR [inventario.health] estado=ERROR base_datos=ERROR" in health[1]
    assert "Base de datos no disponible" in (logs / "error.log").read_text()


def test_openapi_nombra_los_estados_que_devuelve(client: TestClient) -> None:
    """/docs describe los estados del código (OK, DEGRADADO, ERROR), no otros inventados."""
    from inventario.modules.salud import service

    op = aplicacion(client).openapi()["paths"]["/health"]["get"]
    descripcion, ok = op["description"], op["responses"]["200"]["description"]
    for estado in (service.OK, service.DEGRADADO, service.ERROR):
        assert f"{estado}" in descripcion
    assert service.OK in ok and service.DEGRADADO in ok and service.ERROR not in ok
    assert service.ERROR in op["responses"]["503"]["description"]
    assert "ADVERTENCIA" not in descripcion + ok
