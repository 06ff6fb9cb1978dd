"""Nada de lo que escribe el servicio es legible por otros usuarios locales: backups (llevan los
hashes de las contraseñas), manifiestos, logs y la clave secreta, 0600 en carpetas 0700, aunque
el umask sea 022 y aunque una versión anterior dejara las carpetas abiertas."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inventario.config import Settings
from inventario.logging_setup import setup_logging


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_private(root: Path) -> list[Path]:
    assert _mode(root) == 0o700, oct(_mode(root))
    found = []
    for path in root.rglob("*"):
        found.append(path)
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == expected, (path, oct(_mode(path)))
    return found


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_backup_por_cli_con_umask_022_y_carpetas_viejas_abiertas(
    cli_env: dict[str, str], settings: Settings
) -> None:
    backups, logs = Path(settings.BACKUP_PATH), Path(settings.LOGS_PATH)
    for directory in (backups, logs):
        directory.mkdir(mode=0o755, parents=True)
        directory.chmod(0o755)
    (logs / "app.log").write_text("de una versión anterior\n")
    (logs / "app.log").chmod(0o644)
    exe = Path(sys.executable).with_name("inventario")
    result = subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$0" backup ejecutar --tipo COMPLETO', str(exe)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = _assert_private(backups)
    assert any(p.name.endswith(".sql.gz") for p in files) and any("manifest" in p.name for p in files)
    assert "app.log" in {p.name for p in _assert_private(logs)}


def test_clave_secreta_generada_0600_en_carpeta_0700(tmp_path: Path, umask_022: None) -> None:
    settings = Settings(_env_file=None, DATA_PATH=str(tmp_path / "data"), SECRET_KEY=None)
    key = settings.secret_key()
    assert _mode(tmp_path / "data" / "secret_key") == 0o600 and _mode(tmp_path / "data") == 0o700
    assert settings.secret_key() == key


@pytest.mark.usefixtures("restore_logging")
def test_logs_0600_aunque_se_configuren_fuera_del_servicio(tmp_path: Path, umask_022: None) -> None:
    setup_logging(tmp_path / "logs")
    logging.getLogger("inventario.prueba").error("algo")
    logging.getLogger("inventario.sesiones").info("LOGIN OK")
    assert {"app.log", "error.log", "sesiones.log"} <= {p.name for p in _assert_private(tmp_path / "logs")}
