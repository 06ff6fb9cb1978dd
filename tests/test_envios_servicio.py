"""Contra `inventario serve` en marcha (subproceso en loopback): el despachador corre en el
servicio, un aviso creado por la API sale solo, un canal caído se reintenta y el aviso llega tras
reiniciar el servicio; ningún secreto de los canales en sus archivos de log."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from inventario.config import Settings
from inventario.database import make_engine
from inventario.postgres import DatabaseServer
from tests.conftest import ADMIN_PASSWORD
from tests.envios_support import Receptor, receptor_http
from tests.servicio_support import puerto_libre

SECRETO = "tok-Servicio-41b7e2"


@pytest.fixture
def webhook() -> Iterator[Receptor]:
    with receptor_http() as receptor:
        yield receptor


def esperar(condicion: Callable[[], object], que: str, timeout: float = 60) -> None:
    limite = time.monotonic() + timeout
    while not condicion():
        assert time.monotonic() < limite, f"no ocurrió a tiempo: {que}"
        time.sleep(0.2)


@contextmanager
def servicio(env: dict[str, str], port: int) -> Iterator[str]:
    exe = Path(sys.executable).with_name("inventario")
    proc = subprocess.Popen(
        [str(exe), "serve", "--sin-scheduler", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def arriba() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        esperar(arriba, "el servicio arrancó", 90)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_el_servicio_envia_solo_reintenta_y_entrega_tras_reiniciar(
    cli_env: dict[str, str], settings: Settings, fresh_db: DatabaseServer, webhook: Receptor
) -> None:
    env = {
        **cli_env,
        "NOTIFICACIONES_URLS": f"json://{webhook.base()}/avisos/{SECRETO}",
        "NOTIFICACIONES_INTERVALO_SEGUNDOS": "0.3",
        "LOG_LEVEL": "DEBUG",
    }
    port = puerto_libre()
    engine = make_engine(fresh_db.url)

    def envio() -> tuple[str, int] | None:
        with engine.connect() as conn:
            fila = conn.execute(text("SELECT estado, intentos FROM envios")).first()
        return (fila.estado, fila.intentos) if fila else None

    try:
        webhook.status = 503
        with servicio(env, port) as base:
            token = httpx.post(
                f"{base}/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
            ).json()["access_token"]
            r = httpx.post(
                f"{base}/api/v1/notificaciones",
                json={
                    "tipo": "AVISO",
                    "titulo": "Se cortó la luz",
                    "mensaje": "Revise el UPS",
                    "semaforo": "ROJO",
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201, r.text  # quien avisa no espera al canal
            esperar(lambda: envio() == ("ERROR", 1), "primer intento fallido")
        assert webhook.recibidas() == []

        webhook.status = 200
        with engine.begin() as conn:  # el reloj llega al próximo intento mientras el servicio está parado
            conn.execute(text("UPDATE envios SET proximo_intento = now()"))
        with servicio(env, port):
            esperar(lambda: envio() == ("ENVIADA", 2), "entregado tras reiniciar")
            time.sleep(1)  # unos ciclos más no lo repiten
        (llamada,) = webhook.recibidas("POST")
        assert llamada.cuerpo["title"] == "[Inventario] Se cortó la luz"
        assert "Revise el UPS" in llamada.cuerpo["message"]
    finally:
        engine.dispose()
    logs = "\n".join(p.read_text(encoding="utf-8") for p in settings.logs_dir.glob("*.log"))
    assert "Aviso 1 enviado" in logs and "intento 1 falló" in logs
    assert SECRETO not in logs
