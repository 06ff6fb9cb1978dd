"""Un `inventario serve` de verdad en un subproceso, en loopback: lo que ve el operador en la
consola y lo que ve un cliente HTTP sin el TestClient en medio."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ULTIMA_LINEA = "  Detener:"  # el aviso va de "Inventario en marcha" a esta línea


def puerto_libre() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Servicio:
    proc: subprocess.Popen[str]
    url: str
    aviso: list[str]
    salida: str = ""  # lo que escribió en stdout después del aviso (se llena al detenerlo)
    errores: str = ""


def inventario_exe() -> str:
    return str(Path(sys.executable).with_name("inventario"))


@contextmanager
def servicio(
    env: dict[str, str],
    *args: str,
    espera: float = 120,
    umask: int = -1,
    cwd: Path | None = None,
    grupo_propio: bool = False,
) -> Iterator[Servicio]:
    """Arranca `inventario serve` y devuelve cuando el aviso de inicio salió completo; al final lo
    detiene con SIGTERM (como systemd) y exige que salga limpio. `umask`: el del proceso hijo.
    `grupo_propio`: en su propio grupo de procesos, como en una terminal (para mandarle un Ctrl+C
    a todo el grupo sin que le llegue a pytest)."""
    port = puerto_libre()
    proc = subprocess.Popen(
        [inventario_exe(), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=umask,
        cwd=cwd,
        start_new_session=grupo_propio,
    )
    srv: Servicio | None = None
    try:
        assert proc.stdout is not None
        aviso: list[str] = []
        limite = time.monotonic() + espera
        while not (aviso and aviso[-1].startswith(ULTIMA_LINEA)) and time.monotonic() < limite:
            line = proc.stdout.readline()
            if not line:
                break
            if aviso or line.startswith("Inventario en marcha"):
                aviso.append(line.rstrip("\n"))
        if not (aviso and aviso[-1].startswith(ULTIMA_LINEA)):
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"El servicio no mostró el aviso de inicio: {aviso} {err}")
        srv = Servicio(proc, f"http://127.0.0.1:{port}", aviso)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if srv is not None:
            srv.salida, srv.errores = out, err
