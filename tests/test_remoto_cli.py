"""`inventario backup remoto ...` como proceso real contra un S3 en loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.remoto_support import Destino, destino


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Destino]:
    with destino("s3", tmp_path / "remoto") as dest:
        yield dest


@pytest.fixture
def env(cli_env: dict[str, str], s3: Destino, tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "clave.txt"
    out = run_cli(cli_env, "backup", "clave", "generar", "--salida", str(key))
    assert out.returncode == 0, out.stderr
    public = out.stdout.strip()
    assert public.startswith("age1")
    assert s3.config is not None
    return dict(
        cli_env,
        BACKUP_REMOTO=s3.remote,
        BACKUP_REMOTO_CONFIG=str(s3.config),
        BACKUP_CIFRADO_DESTINATARIOS=public,
        IDENTIDAD=str(key),
    )


def test_subir_listar_verificar_y_detectar_un_byte_cambiado(env: dict[str, str], s3: Destino) -> None:
    assert run_cli(env, "backup", "ejecutar", "--tipo", "COMPLETO").returncode == 0
    assert run_cli(env, "backup", "ejecutar", "--tipo", "DIFERENCIAL").returncode == 0
    out = run_cli(env, "backup", "remoto", "subir", "--pendientes")
    assert out.returncode == 0, out.stderr
    out = run_cli(env, "backup", "remoto", "listar")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if ".sql.gz.age" in line]
    assert len(lines) == 2 and "DIFERENCIAL" in lines[0] and "COMPLETO" in lines[1]

    out = run_cli(env, "backup", "remoto", "verificar", "--todos")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("OK") == 2

    out = run_cli(env, "backup", "remoto", "verificar", "--restaurar-prueba", "--identidad", env["IDENTIDAD"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "restaurado en una base temporal" in out.stdout

    # Un byte cambiado en el servidor (el completo): la verificación lo detecta y falla.
    full = next(s3.storage.glob("*_FULL.sql.gz.age"))
    data = bytearray(full.read_bytes())
    data[100] ^= 0x10
    full.write_bytes(bytes(data))
    out = run_cli(env, "backup", "remoto", "verificar", "--todos")
    assert out.returncode == 1
    assert "ERROR" in out.stdout and full.name in out.stdout and "dañada" in out.stdout
    # Y la restauración de prueba de la cadena (que usa ese completo) no se intenta con él.
    out = run_cli(env, "backup", "remoto", "verificar", "--restaurar-prueba", "--identidad", env["IDENTIDAD"])
    assert out.returncode == 1
    for text in (out.stdout, out.stderr):
        assert s3.secret not in text


def test_sin_configurar_y_argumentos_invalidos(cli_env: dict[str, str]) -> None:
    out = run_cli(cli_env, "backup", "remoto", "listar")
    assert out.returncode == 2 and "BACKUP_REMOTO" in out.stderr
    out = run_cli(dict(cli_env, BACKUP_REMOTO="/tmp/x"), "backup", "remoto", "subir")
    assert out.returncode == 2 and "--pendientes" in out.stderr
    out = run_cli(dict(cli_env, BACKUP_CIFRADO_DESTINATARIOS="age1malo"), "backup", "remoto", "listar")
    assert out.returncode == 2 and "BACKUP_CIFRADO_DESTINATARIOS" in out.stderr
