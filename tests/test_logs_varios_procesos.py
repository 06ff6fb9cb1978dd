"""Logs con `serve --workers N`: el principal rota los archivos aunque él no escriba en ellos, y un
worker (otro proceso, escribiendo el mismo archivo) sigue escribiendo en el archivo nuevo, no en el
rotado. Cada línea dice qué proceso la escribió."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

import pytest

from inventario.logging_setup import _configured, rotate_due, setup_logging

pytestmark = pytest.mark.usefixtures("restore_logging")  # el logging vuelve a como estaba (conftest)

WORKER = """
import logging, sys
from pathlib import Path
from inventario.logging_setup import setup_logging
setup_logging(Path(sys.argv[1]), "INFO", "UTC", "worker")
access = logging.getLogger("uvicorn.access")
access.info("antes de rotar")
print("listo", flush=True)
sys.stdin.readline()
access.info("despues de rotar")
"""


def test_el_principal_rota_y_el_worker_sigue_en_el_archivo_nuevo(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    setup_logging(logs, "INFO", "UTC", "principal")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(logs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert worker.stdout.readline().strip() == "listo"
        rotate_due()  # todavía no toca: nada se mueve
        assert [p.name for p in logs.iterdir() if p.name.startswith("acceso.log.")] == []
        # Medianoche (la del archivo diario de acceso.log, que el principal nunca escribe).
        (diario,) = [
            h
            for h in _configured
            if isinstance(h, TimedRotatingFileHandler) and h.baseFilename.endswith("acceso.log")
        ]
        diario.rolloverAt = int(time.time())
        rotate_due()
        worker.stdin.write("\n")
        worker.stdin.flush()
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    (rotado,) = [p for p in logs.iterdir() if p.name.startswith("acceso.log.")]
    assert re.fullmatch(r"acceso\.log\.\d{4}-\d{2}-\d{2}", rotado.name)  # la fecha de lo que contiene
    viejo, nuevo = rotado.read_text(), (logs / "acceso.log").read_text()
    assert "antes de rotar" in viejo and "despues de rotar" not in viejo
    assert "despues de rotar" in nuevo and "antes de rotar" not in nuevo
    assert f"[pid {worker.pid}] despues de rotar" in nuevo
    assert oct((logs / "acceso.log").stat().st_mode & 0o777) == oct(0o600)
    logging.getLogger("inventario.prueba").info("del principal")
    assert f"[pid {os.getpid()}] del principal" in (logs / "app.log").read_text()
