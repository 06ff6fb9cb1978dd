"""`deploy/inventario.service`: una unidad systemd válida que arranca al encender, se reinicia si
falla y se detiene limpio; y el comportamiento que la unidad supone del proceso: con SIGTERM
espera al backup en curso y sale con 0."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from inventario.modules.backup.prioridad import APP_NAME
from inventario.postgres import DatabaseServer
from tests.backup_support import bloquear_pg_dump, connect
from tests.conftest import ADMIN_PASSWORD
from tests.servicio_support import servicio

pytestmark = pytest.mark.lento

RAIZ = Path(__file__).resolve().parents[1]
UNIDAD = RAIZ / "deploy" / "inventario.service"
INSTALADO_EN = "/opt/inventario"


def opciones(texto: str) -> dict[str, list[str]]:
    valores: dict[str, list[str]] = {}
    for linea in texto.splitlines():
        linea = linea.strip()
        if linea and not linea.startswith(("#", "[")):
            clave, valor = linea.split("=", 1)
            valores.setdefault(clave, []).append(valor)
    return valores


def test_unidad_arranca_al_encender_reinicia_y_para_limpio() -> None:
    o = opciones(UNIDAD.read_text())
    assert o["WantedBy"] == ["multi-user.target"]
    assert o["ExecStart"] == [f"{INSTALADO_EN}/.venv/bin/inventario serve"]
    assert o["Restart"] == ["on-failure"]
    assert o["RestartPreventExitStatus"] == ["2"]  # error de configuración: no reintentar
    # SIGTERM solo al proceso principal (KillMode=mixed): pg_dump y el PostgreSQL embebido los
    # detiene él, después de esperar al backup; y hay tiempo de sobra para ese backup.
    assert o["KillSignal"] == ["SIGTERM"] and o["KillMode"] == ["mixed"]
    assert int(o["TimeoutStopSec"][0]) >= 1800
    assert o["UMask"] == ["0027"]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze no está instalado: no se puede verificar deploy/inventario.service")
    # La unidad instalada apunta a /opt/inventario; aquí, al repositorio (verify exige que
    # ExecStart exista y sea ejecutable).
    venv = Path(shutil.which("inventario") or RAIZ / ".venv" / "bin" / "inventario").parent.parent
    texto = UNIDAD.read_text().replace(f"{INSTALADO_EN}/.venv", str(venv)).replace(INSTALADO_EN, str(RAIZ))
    copia = tmp_path / "inventario.service"
    copia.write_text(texto)
    r = subprocess.run([analyze, "verify", str(copia)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "Failed to" in r.stderr and "bus" in r.stderr.lower():
        pytest.skip(f"systemd-analyze no puede correr aquí: {r.stderr.strip()}")
    avisos = [line for line in r.stderr.splitlines() if "inventario.service" in line]
    assert r.returncode == 0 and not avisos, r.stderr


@pytest.mark.parametrize("parada", ["SIGTERM al proceso", "Ctrl+C al grupo"])
def test_sigterm_o_ctrl_c_espera_al_backup_en_curso_y_sale_con_cero(
    cli_env: dict[str, str], fresh_db: DatabaseServer, parada: str
) -> None:
    """`systemctl stop` manda SIGTERM al proceso principal; Ctrl+C en una terminal, SIGINT a todo
    el grupo (también a pg_dump, si estuviera en él: el backup terminaba en ERROR)."""
    env = {**cli_env, "BACKUP_ENABLED": "false"}
    bloqueo = bloquear_pg_dump(fresh_db)  # el backup queda EN_PROCESO hasta soltarlo
    try:
        with servicio(env, "--sin-scheduler", grupo_propio=True) as srv:
            token = httpx.post(
                srv.url + "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            r = httpx.post(srv.url + "/api/v1/backup/ejecutar-completo", headers=headers)
            assert r.status_code == 202, r.text
            id_backup = r.json()["id_backup"]
            # Que pg_dump ya esté corriendo (esperando el bloqueo) cuando llegue la señal.
            limite = time.monotonic() + 60
            while not _pg_dump_esperando(fresh_db):
                assert time.monotonic() < limite, "pg_dump no llegó a esperar el bloqueo"
                time.sleep(0.1)

            if parada == "SIGTERM al proceso":
                srv.proc.send_signal(signal.SIGTERM)  # lo que hace `systemctl stop`
            else:
                os.killpg(srv.proc.pid, signal.SIGINT)  # Ctrl+C en la terminal
            time.sleep(2)
            assert srv.proc.poll() is None  # sigue: espera al backup
            bloqueo.rollback()
            srv.proc.wait(timeout=120)
    finally:
        bloqueo.close()
    assert srv.proc.returncode == 0, srv.errores
    assert srv.salida.strip().endswith("Inventario detenido.")
    with connect(fresh_db) as conn:
        estado = conn.execute(
            "SELECT estado FROM historial_backup WHERE id_backup = %s", (id_backup,)
        ).fetchone()
    assert estado == ("COMPLETADO",)


def _pg_dump_esperando(server: DatabaseServer) -> bool:
    with connect(server) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (APP_NAME,),
        ).fetchone()
    return bool(row and row[0])
