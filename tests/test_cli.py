"""La consola como la usa un operador: la base caída en una línea, contraseñas y desbloqueo sin
SQL, psql en la base embebida y preguntas que se contestan en español."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from inventario.config import Settings
from tests.conftest import ADMIN_PASSWORD, login, run_cli
from tests.servicio_support import puerto_libre


@pytest.mark.lento
def test_base_caida_una_linea_y_la_traza_en_error_log(cli_env: dict[str, str], settings: Settings) -> None:
    env = {**cli_env, "DATABASE_URL": f"postgresql://inventario:clave-secreta@127.0.0.1:{puerto_libre()}/x"}
    for orden in (
        ["jobs", "listar"],
        ["backup", "listar"],
        ["db", "upgrade"],
        ["usuario", "desbloquear", "a"],
    ):
        r = run_cli(env, *orden)
        assert r.returncode == 1, (orden, r.stderr)
        (linea,) = r.stderr.strip().splitlines()
        assert linea.startswith("Error: No se pudo conectar con postgresql://inventario@127.0.0.1:"), linea
        assert "Revise que ese PostgreSQL esté en marcha" in linea and "clave-secreta" not in linea
        assert "el servidor no acepta conexiones ahí" in linea and "Connection refused" not in linea, linea
    error_log = (settings.logs_dir / "error.log").read_text()
    assert error_log.count("Traceback") >= 4 and "Orden fallida: jobs listar" in error_log
    assert "clave-secreta" not in error_log


@pytest.mark.lento
def test_usuario_password_y_desbloquear(cli_env: dict[str, str], engine: Engine, settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from inventario.main import create_app
    from inventario.postgres import DatabaseServer, sqlalchemy_url

    server = DatabaseServer(sqlalchemy_url(cli_env["DATABASE_URL"]), embedded=False)
    with TestClient(create_app(settings, server=server, with_scheduler=False)) as client:
        # Una cuenta bloqueada en la base (el servicio respeta bloqueado_hasta).
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE usuarios SET bloqueado_hasta = now() + interval '1 hour', intentos_fallidos = 7 "
                    "WHERE nombre_usuario = 'admin'"
                )
            )
        bloqueado = client.post(
            "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
        )
        assert bloqueado.status_code == 401

        r = run_cli(cli_env, "usuario", "desbloquear", "admin")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Usuario 'admin' desbloqueado (estaba bloqueado hasta ")
        assert "7 intentos fallidos" in r.stdout
        assert login(client, "admin", ADMIN_PASSWORD)

        # Sin terminal, la contraseña llega por la entrada estándar (nunca en la línea de órdenes).
        r = run_cli(cli_env, "usuario", "password", "admin", input="corta\n")
        assert (
            r.returncode == 2
            and "Contraseña inválida: password: debe tener al menos 8 caracteres" in r.stderr
        )
        r = run_cli(cli_env, "usuario", "password", "admin", input="otra-clave-larga\n")
        assert r.returncode == 0, r.stderr
        assert "Contraseña de 'admin' cambiada" in r.stdout
        assert (
            client.post(
                "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD}
            ).status_code
            == 401
        )
        assert login(client, "admin", "otra-clave-larga")

    r = run_cli(cli_env, "usuario", "password", "nadie", input="otra-clave-larga\n")
    assert r.returncode == 1 and r.stderr.strip() == "No existe el usuario 'nadie'"
    with engine.begin() as conn:
        conn.execute(text("UPDATE usuarios SET activo = false WHERE nombre_usuario = 'admin'"))
    r = run_cli(cli_env, "usuario", "desbloquear", "admin")
    assert r.returncode == 0 and "está desactivado" in r.stdout
    r = run_cli(cli_env, "usuario", "desbloquear", "admin", "--activar")
    assert r.returncode == 0 and "desactivado" not in r.stdout
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT activo FROM usuarios WHERE nombre_usuario = 'admin'")) is True
    sesiones = (settings.logs_dir / "sesiones.log").read_text()
    assert "PASSWORD CAMBIADA usuario=admin desde=consola" in sesiones
    assert "otra-clave-larga" not in sesiones


def test_usuario_crear_lee_la_contrasena_de_stdin(cli_env: dict[str, str], engine: Engine) -> None:
    r = run_cli(cli_env, "usuario", "crear", "ana", "--admin", input="clave-de-ana\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usuario 'ana' creado con rol ADMIN")
    r = run_cli(cli_env, "usuario", "crear", "beto", input="")
    assert r.returncode == 2 and "Falta la contraseña" in r.stderr
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM usuarios WHERE nombre_usuario = 'beto'")) == 0


def test_db_url_sin_clave(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DATABASE_URL": "postgresql://tienda:clave-secreta@db.local:5433/inventario"}
    r = run_cli(env, "db", "url")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "postgresql://tienda@db.local:5433/inventario"
    assert "clave-secreta" not in r.stdout + r.stderr and "PGPASSWORD" in r.stderr


@pytest.fixture
def embebido() -> Iterator[dict[str, str]]:
    """Un entorno sin DATABASE_URL: la consola arranca su propio PostgreSQL embebido."""
    home = tempfile.mkdtemp(prefix="inventario-cli-")
    os.chmod(home, 0o755)  # el postmaster corre como otro usuario
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PG_BIN_DIR")}
    env.update(DATA_PATH=f"{home}/data", LOGS_PATH=f"{home}/logs", BACKUP_PATH=f"{home}/backups")
    env["INVENTARIO_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    try:
        yield env
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.lento
def test_db_url_y_psql_en_el_embebido(embebido: dict[str, str]) -> None:
    r = run_cli(embebido, "db", "url")
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    socket_dir = Path(embebido["DATA_PATH"]) / "pgdata"
    assert url.startswith("postgresql://") and "/inventario?host=" in url
    assert str(socket_dir).replace("/", "%2F") in url
    assert "inventario serve" in r.stderr
    r = run_cli(embebido, "db", "psql", "--", "-X", "-At", "-c", "SELECT current_database(), 6 * 7")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "inventario|42"
    r = run_cli(embebido, "db", "psql", "--", "-X", "-c", "SELECT * FROM no_existe")
    assert r.returncode != 0 and "no_existe" in r.stderr


def _app_que_confirma() -> typer.Typer:
    from inventario.consola import confirmar

    app = typer.Typer()

    @app.command()
    def borrar() -> None:
        confirmar("¿Borrar?")
        typer.echo("borrado")

    return app


@pytest.mark.parametrize(
    ("entrada", "sale", "codigo"),
    [
        ("s\n", "borrado", 0),
        ("sí\n", "borrado", 0),
        ("SI\n", "borrado", 0),
        ("n\n", "Cancelado: no se cambió nada.", 1),
        ("no\n", "Cancelado: no se cambió nada.", 1),
        ("\n", "Cancelado: no se cambió nada.", 1),
        ("", "Cancelado: no se cambió nada.", 1),  # sin entrada (script): no
        ("quizá\ns\n", "Responda s (sí) o n (no).", 0),
    ],
)
def test_confirmar_en_espanol(entrada: str, sale: str, codigo: int) -> None:
    r = CliRunner().invoke(_app_que_confirma(), [], input=entrada)
    assert r.exit_code == codigo, r.output
    assert "[s/N]" in r.output and sale in r.output
    assert "Error: invalid input" not in r.output


# Lo que Click y Typer escriben en inglés si nadie lo traduce.
INGLES = (
    "Usage",
    "Options",
    "Commands",
    "Arguments",
    "Show this message",
    "Try '",
    "No such",
    "Missing",
    "requires an argument",
    "unexpected extra",
    "Invalid value",
    "[OPTIONS]",
    "COMMAND [ARGS]",
    "Input should",
)


@pytest.mark.parametrize(
    ("args", "esperado"),
    [
        (["--help"], "Muestra esta ayuda y sale."),
        (["backup", "restaurar", "--help"], "Uso: inventario backup restaurar [OPCIONES]"),
        (["backup"], "Órdenes"),
        (["backup", "noexiste"], "No existe la orden 'noexiste'."),
        (["backup", "listar", "--noexiste"], "No existe la opción --noexiste"),
        (["backup", "restaurar", "--hasta"], "La opción '--hasta' necesita un valor."),
        (["backup", "ejecutar", "sobra"], "Sobran argumentos: sobra"),
        (["usuario", "crear"], "Falta el argumento 'nombre_usuario'."),
        (
            ["jobs", "historial", "backup_diario", "--limite", "muchos"],
            "'--limite': debe ser un número entero",
        ),
        (["jobs", "historial", "backup_diario", "--limite", "0"], "'--limite': debe ser mayor o igual que 1"),
    ],
)
def test_ayuda_y_errores_de_uso_en_espanol(args: list[str], esperado: str) -> None:
    """El ejecutable real, sin base: la ayuda y los errores de uso no necesitan ninguna."""
    env = {**os.environ, "COLUMNS": "200"}
    result = run_cli(env, *args)
    salida = result.stdout + result.stderr
    assert esperado in salida, salida
    assert not [t for t in INGLES if t in salida], salida
