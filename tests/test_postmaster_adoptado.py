"""Tras un `kill -9` del servicio, el que arranca después adopta el PostgreSQL embebido huérfano
y lo apaga al terminar limpio (antes lo dejaba corriendo para siempre)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ARRANCAR = """
import sys, time
from pathlib import Path
from inventario.postgres import start_embedded
server = start_embedded(Path(sys.argv[1]))
print(server._handle.get_pid(), flush=True)
if sys.argv[2] == "esperar":
    time.sleep(600)
server.stop()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def test_el_postmaster_adoptado_se_apaga_al_salir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = subprocess.Popen(
        [sys.executable, "-c", ARRANCAR, str(data), "esperar"], stdout=subprocess.PIPE, text=True
    )
    postmaster = 0
    try:
        assert first.stdout is not None
        postmaster = int(first.stdout.readline())
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        assert _alive(postmaster)  # huérfano, como tras un kill -9 del servicio
        second = subprocess.run(
            [sys.executable, "-c", ARRANCAR, str(data), "salir"], capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        assert int(second.stdout.split()[0]) == postmaster  # lo adoptó, no arrancó otro
        deadline = time.monotonic() + 30
        while _alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(postmaster)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        if postmaster and _alive(postmaster):
            os.kill(postmaster, signal.SIGQUIT)


MATAR_Y_DETENER = """
import os, signal, sys, time
from pathlib import Path
from inventario.postgres import start_embedded
server = start_embedded(Path(sys.argv[1]))
os.kill(server._handle.get_pid(), signal.SIGKILL)  # el postmaster muere a mitad de una orden
time.sleep(1)
server.stop()
print("detenido", flush=True)
"""


def test_detener_un_postmaster_que_ya_murio_no_tapa_el_error(tmp_path: Path) -> None:
    """Al salir de una orden cuyo PostgreSQL embebido murió, detenerlo no lanza otra excepción: la
    consola decía "No arrancó el PostgreSQL embebido" en vez del error real de la orden."""
    done = subprocess.run(
        [sys.executable, "-c", MATAR_Y_DETENER, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "detenido" in done.stdout, done.stderr
