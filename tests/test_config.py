"""Configuración: valores por defecto del plan, `.env`, errores que nombran la variable, y la
búsqueda de pg_dump/psql compatibles con el servidor."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inventario.config import ConfigError, Settings, load_settings
from inventario.postgres import (
    DatabaseServer,
    PgToolsError,
    locate_pg_tools,
    pgserver_bin_dir,
    sqlalchemy_url,
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Sin variables del servicio en el entorno y en una carpeta sin `.env`."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valores_por_defecto_del_plan(clean_env: Path) -> None:
    s = Settings(_env_file=None)
    assert (s.BACKUP_ENABLED, s.BACKUP_PATH, s.BACKUP_RETENTION_DAYS) == (True, "backups", 90)
    assert (s.BACKUP_FULL_DAY, s.BACKUP_HOUR, s.BACKUP_MINUTE) == (0, 3, 0)
    assert (s.LOGS_COMPRESSION_ENABLED, s.LOGS_COMPRESSION_DAYS) == (True, 7)
    assert (s.LOGS_RETENTION_DAYS, s.LOGS_PATH) == (90, "logs")
    assert s.DATABASE_URL is None  # sin URL: PostgreSQL embebido
    assert s.WORKERS == 1  # un solo proceso salvo que se pidan más
    assert s.backup_dir == clean_env / "backups" and s.logs_dir == clean_env / "logs"


@pytest.mark.parametrize(
    ("overrides", "variable", "fragment"),
    [
        ({"BACKUP_HOUR": 25}, "BACKUP_HOUR", "23"),
        ({"BACKUP_MINUTE": -1}, "BACKUP_MINUTE", "0"),
        ({"BACKUP_FULL_DAY": 7}, "BACKUP_FULL_DAY", "6"),
        ({"ZONA_HORARIA": "Marte/Olimpo"}, "ZONA_HORARIA", "zona horaria desconocida: 'Marte/Olimpo'"),
        ({"DATABASE_URL": "mysql://u:p@h/db"}, "DATABASE_URL", "postgresql://usuario:clave@servidor"),
        ({"LOG_LEVEL": "RUIDOSO"}, "LOG_LEVEL", "DEBUG, INFO, WARNING o ERROR"),
        ({"WORKERS": 0}, "WORKERS", "1"),
        ({"WORKERS": "dos"}, "WORKERS", "entero"),
        ({"BACKUP_PRIORIDAD": 20}, "BACKUP_PRIORIDAD", "menor o igual que 19"),
        ({"BACKUP_PRIORIDAD": -1}, "BACKUP_PRIORIDAD", "mayor o igual que 0"),
        ({"BACKUP_CPU_OCIOSA": "quizas"}, "BACKUP_CPU_OCIOSA", "verdadero o falso"),
        ({"BACKUP_FRENO_MB_S": -1}, "BACKUP_FRENO_MB_S", "mayor o igual que 0"),
        ({"BACKUP_FRENO_MB_S": "inf"}, "BACKUP_FRENO_MB_S", "número finito"),
        ({"BACKUP_GZIP_NIVEL": 0}, "BACKUP_GZIP_NIVEL", "mayor o igual que 1"),
    ],
)
def test_configuracion_invalida_nombra_la_variable(
    clean_env: Path, overrides: dict[str, object], variable: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    message = str(info.value)
    assert message.startswith("Configuración inválida:")
    assert f"  {variable}: " in message and fragment in message


def test_varios_errores_se_informan_juntos(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(BACKUP_HOUR=99, ZONA_HORARIA="Nada/Nada")
    assert "BACKUP_HOUR" in str(info.value) and "ZONA_HORARIA" in str(info.value)


def test_archivo_env_y_prioridad_del_entorno(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "# configuración de la sucursal\nBACKUP_HOUR=5\nLOGS_PATH=registros\nZONA_HORARIA=America/Bogota\n",
        encoding="utf-8",
    )
    s = load_settings()
    assert (s.BACKUP_HOUR, s.LOGS_PATH, s.ZONA_HORARIA) == (5, "registros", "America/Bogota")
    assert s.logs_dir == clean_env / "registros"
    assert s.BACKUP_MINUTE == 0  # lo que el .env no dice, por defecto
    # Una variable de entorno manda sobre el .env.
    monkeypatch.setenv("BACKUP_HOUR", "7")
    assert load_settings().BACKUP_HOUR == 7


def test_error_en_el_archivo_env_nombra_la_variable(clean_env: Path) -> None:
    (clean_env / ".env").write_text("BACKUP_RETENTION_DAYS=0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="BACKUP_RETENTION_DAYS"):
        load_settings()


def test_mensajes_de_configuracion_en_espanol(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(BACKUP_HOUR=25)
    assert "BACKUP_HOUR: debe ser menor o igual que 23" in str(info.value)
    assert "Input should" not in str(info.value)


def test_consola_con_configuracion_invalida_sale_con_2(clean_env: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env["BACKUP_HOUR"] = "99"
    exe = Path(sys.executable).with_name("inventario")
    result = subprocess.run(
        [str(exe), "db", "upgrade"], env=env, cwd=clean_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Configuración inválida" in result.stderr and "BACKUP_HOUR" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (clean_env / "data").exists()  # no llegó a arrancar ningún PostgreSQL


# ---------------------------------------------------------------- pg_dump / psql


def remote_server() -> DatabaseServer:
    return DatabaseServer(
        sqlalchemy_url("postgresql://inventario@db.ejemplo:5432/inventario"), embedded=False
    )


def fake_client(folder: Path, name: str, version: str) -> Path:
    """Un ejecutable real que responde a --version como lo hace el cliente de PostgreSQL."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} (PostgreSQL) {version}"\n')
    path.chmod(0o755)
    return path


def test_clientes_viejos_error_con_ambas_versiones_y_como_arreglarlo(tmp_path: Path) -> None:
    fake_client(tmp_path, "pg_dump", "12.3")
    fake_client(tmp_path, "psql", "12.3")
    with pytest.raises(PgToolsError) as info:
        locate_pg_tools(remote_server(), 16, str(tmp_path))
    message = str(info.value)
    assert "PostgreSQL 16" in message and "versión 12" in message
    assert "PG_BIN_DIR" in message and "postgresql-client-16" in message
    assert str(tmp_path) in message


def test_cuenta_la_version_menor_de_los_dos(tmp_path: Path) -> None:
    fake_client(tmp_path, "pg_dump", "16.4")
    fake_client(tmp_path, "psql", "14.1")
    with pytest.raises(PgToolsError, match="versión 14"):
        locate_pg_tools(remote_server(), 16, str(tmp_path))
    tools = locate_pg_tools(remote_server(), 14, str(tmp_path))
    assert tools.major == 14 and tools.path("pg_dump") == str(tmp_path / "pg_dump")


def test_clientes_del_sistema_reales(tmp_path: Path) -> None:
    if not (Path("/usr/bin/pg_dump").exists() and Path("/usr/bin/psql").exists()):
        pytest.skip("no hay cliente de PostgreSQL en /usr/bin")
    out = subprocess.run(["/usr/bin/pg_dump", "--version"], capture_output=True, text=True).stdout
    major = int(out.split("(PostgreSQL)")[1].split(".")[0])
    tools = locate_pg_tools(remote_server(), major, "/usr/bin")
    assert tools.major == major and tools.bin_dir == Path("/usr/bin")
    with pytest.raises(PgToolsError, match=f"PostgreSQL {major + 1} .*versión {major}"):
        locate_pg_tools(remote_server(), major + 1, "/usr/bin")


def test_binarios_del_servidor_embebido() -> None:
    embedded = DatabaseServer(
        sqlalchemy_url("postgresql://postgres@/inventario"), embedded=True, bin_dir_hint=pgserver_bin_dir()
    )
    tools = locate_pg_tools(embedded, 16, "/no/se/usa")
    assert tools.major >= 16 and tools.bin_dir == pgserver_bin_dir()


def test_binarios_que_faltan_error_claro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PgToolsError, match=f"No existe {tmp_path / 'pg_dump'} \\(origen: PG_BIN_DIR\\)"):
        locate_pg_tools(remote_server(), 16, str(tmp_path))
    fake_client(tmp_path, "pg_dump", "16.4")
    with pytest.raises(PgToolsError, match="psql"):
        locate_pg_tools(remote_server(), 16, str(tmp_path))
    # Sin PG_BIN_DIR y sin nada en el PATH.
    monkeypatch.setenv("PATH", str(tmp_path / "vacio"))
    with pytest.raises(PgToolsError) as info:
        locate_pg_tools(remote_server(), 16, None)
    assert "No se encontró pg_dump en el PATH" in str(info.value)
    assert "PostgreSQL 16 o superior" in str(info.value) and "PG_BIN_DIR" in str(info.value)


def test_clientes_en_el_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_client(tmp_path / "bin", "pg_dump", "16.4")
    fake_client(tmp_path / "bin", "psql", "16.4")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert locate_pg_tools(remote_server(), 16, None).bin_dir == tmp_path / "bin"


def test_clientes_en_el_path_como_enlaces_a_un_envoltorio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Como Debian: pg_dump y psql del PATH son enlaces a un único script que mira su $0.
    share = tmp_path / "share"
    share.mkdir()
    wrapper = share / "pg_wrapper"
    wrapper.write_text('#!/bin/sh\necho "$(basename "$0") (PostgreSQL) 16.4"\n')
    wrapper.chmod(0o755)
    (tmp_path / "bin").mkdir()
    for name in ("pg_dump", "psql"):
        (tmp_path / "bin" / name).symlink_to(wrapper)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert shutil.which("pg_dump") == str(tmp_path / "bin" / "pg_dump")
    assert locate_pg_tools(remote_server(), 16, None).bin_dir == tmp_path / "bin"
