"""Un usuario local de la máquina (sin cuenta en el servicio): lo que puede leer en disco y en la
lista de procesos."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.adversarial.conftest import ADMIN_PASSWORD, OPERADOR_PASSWORD, Objetivo


def _backup_hecho(objetivo: Objetivo) -> None:
    """Un backup completo terminado (esperando al que otra prueba haya dejado en marcha)."""
    with objetivo.cliente() as c:
        limite = time.monotonic() + 120
        while True:
            r = c.post("/api/v1/backup/ejecutar-completo?esperar=true", headers=objetivo.admin)
            if r.status_code != 409 or time.monotonic() > limite:
                break
            time.sleep(0.5)
        assert r.status_code == 201, r.text


def _modo(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_backups_logs_y_clave_solo_para_el_servicio(objetivo: Objetivo) -> None:
    _backup_hecho(objetivo)
    revisados = []
    for root in (objetivo.backups, objetivo.logs):
        assert _modo(root) == 0o700, (root, oct(_modo(root)))
        for path in root.rglob("*"):
            revisados.append(path.name)
            assert _modo(path) == (0o700 if path.is_dir() else 0o600), (path, oct(_modo(path)))
    assert any(n.endswith(".sql.gz") for n in revisados) and any("manifest" in n for n in revisados)
    assert {"app.log", "acceso.log", "sesiones.log"} <= set(revisados)
    # DATA_PATH: 0700, o 0711 si PostgreSQL corre como otro usuario (root → pgserver) y tiene
    # que atravesarla; nunca listable ni legible por otros.
    assert _modo(objetivo.data) in (0o700, 0o711)
    assert _modo(objetivo.data / "secret_key") == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="hace falta root para actuar como otro usuario")
def test_otro_usuario_no_lee_nada(objetivo: Objetivo) -> None:
    _backup_hecho(objetivo)
    nobody = pwd.getpwnam("nobody")
    archivos = [
        objetivo.data / "secret_key",
        next(objetivo.backups.glob("*.sql.gz")),
        objetivo.logs / "app.log",
        objetivo.logs / "sesiones.log",
    ]
    for path in archivos:
        r = subprocess.run(["cat", str(path)], user=nobody.pw_uid, group=nobody.pw_gid, capture_output=True)
        assert r.returncode != 0 and b"Permission denied" in r.stderr, path
    for directory in (objetivo.backups, objetivo.logs, objetivo.data):
        r = subprocess.run(
            ["ls", str(directory)], user=nobody.pw_uid, group=nobody.pw_gid, capture_output=True
        )
        assert r.returncode != 0, directory


def _descendientes(pid: int) -> list[int]:
    hijos: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            hijos.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(hijos.get(current, []))
    return found


def test_ningun_secreto_en_la_linea_de_comandos_de_sus_procesos(objetivo: Objetivo) -> None:
    secretos = [ADMIN_PASSWORD, OPERADOR_PASSWORD, (objetivo.data / "secret_key").read_text().strip()]
    procesos = _descendientes(objetivo.srv.proc.pid)
    assert objetivo.srv.proc.pid in procesos
    for pid in procesos:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        for secreto in secretos:
            assert secreto not in cmdline, pid
