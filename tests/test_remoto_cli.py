"""`inventario backup remoto ...` como proceso real contra un S3 en loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from inventario.postgres import DatabaseServer
from tests.backup_support import connect, drop_database, sin_rastro_de_restauraciones, snapshot
from tests.backup_support import fill_inventario as fill
from tests.conftest import admin_conn, run_cli
from tests.remoto_support import Destino, destino, forjar


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Destino]:
    with destino("s3", tmp_path / "remoto") as dest:
        yield dest


def con_cifrado(cli_env: dict[str, str], remote: str, key: Path) -> dict[str, str]:
    """Genera con la CLI la identidad age en `key`; el entorno copia a `remote` cifrando para ella."""
    out = run_cli(cli_env, "backup", "clave", "generar", "--salida", str(key))
    assert out.returncode == 0, out.stderr
    public = out.stdout.strip()
    assert public.startswith("age1")
    return dict(cli_env, BACKUP_REMOTO=remote, BACKUP_CIFRADO_DESTINATARIOS=public)


def perder_todo(env: dict[str, str], fresh_db: DatabaseServer, pg_server: DatabaseServer) -> None:
    """La pérdida total: la base (queda una vacía con el mismo nombre), DATA_PATH y BACKUP_PATH."""
    drop_database(pg_server, fresh_db.database)
    shutil.rmtree(env["BACKUP_PATH"])
    shutil.rmtree(env["DATA_PATH"], ignore_errors=True)
    with admin_conn(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{fresh_db.database}" TEMPLATE template0')


@pytest.fixture
def env(cli_env: dict[str, str], s3: Destino, tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "clave.txt"
    assert s3.config is not None
    return dict(con_cifrado(cli_env, s3.remote, key), BACKUP_REMOTO_CONFIG=str(s3.config), IDENTIDAD=str(key))


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
    # Ni en los logs (app.log, error.log...): las credenciales solo viven en rclone.conf.
    logs = [p for p in Path(env["LOGS_PATH"]).rglob("*") if p.is_file()]
    assert logs and not [p for p in logs if s3.secret.encode() in p.read_bytes()]


def test_sin_configurar_y_argumentos_invalidos(cli_env: dict[str, str]) -> None:
    out = run_cli(cli_env, "backup", "remoto", "listar")
    assert out.returncode == 2 and "BACKUP_REMOTO" in out.stderr
    out = run_cli(dict(cli_env, BACKUP_REMOTO="/tmp/x"), "backup", "remoto", "subir")
    assert out.returncode == 2 and "--pendientes" in out.stderr
    out = run_cli(dict(cli_env, BACKUP_CIFRADO_DESTINATARIOS="age1malo"), "backup", "remoto", "listar")
    assert out.returncode == 2 and "BACKUP_CIFRADO_DESTINATARIOS" in out.stderr


def test_simulacro_de_perdida_total(
    env: dict[str, str], s3: Destino, fresh_db: DatabaseServer, pg_server: DatabaseServer, tmp_path: Path
) -> None:
    """Se pierde todo (la base, DATA_PATH y BACKUP_PATH); con el remoto y la clave se recupera todo."""
    fill(fresh_db, productos=30)
    assert run_cli(env, "backup", "ejecutar", "--tipo", "COMPLETO").returncode == 0
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'cambiado' WHERE id_producto <= 5")
        conn.execute("DELETE FROM movimientos WHERE id_movimiento IN (2, 3)")
    # El estado que guarda el diferencial (su aviso "completado" se escribe después de la instantánea).
    expected = snapshot(fresh_db)
    out = run_cli(env, "backup", "ejecutar", "--tipo", "DIFERENCIAL")
    assert out.returncode == 0, out.stderr
    with connect(fresh_db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id_backup FROM historial_backup ORDER BY 1")]
    out = run_cli(env, "backup", "remoto", "subir", "--pendientes")
    assert out.returncode == 0, out.stdout + out.stderr

    perder_todo(env, fresh_db, pg_server)

    # Una identidad equivocada: error claro y nada tocado (ni la base ni BACKUP_PATH).
    wrong = tmp_path / "otra.txt"
    assert run_cli(env, "backup", "clave", "generar", "--salida", str(wrong)).returncode == 0
    out = run_cli(env, "backup", "restaurar", "--desde-remoto", "--identidad", str(wrong), "--si")
    assert out.returncode == 1 and "La identidad no corresponde" in out.stderr, out.stdout + out.stderr
    assert not list(Path(env["BACKUP_PATH"]).glob("backup_*"))
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)

    out = run_cli(env, "backup", "restaurar", "--desde-remoto", "--identidad", env["IDENTIDAD"], "--si")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Restaurado DIFERENCIAL {ids[1]}" in out.stdout
    # Cada tabla igual a la de origen (salvo la fila y el aviso que la restauración deja a propósito).
    assert sin_rastro_de_restauraciones(snapshot(fresh_db)) == sin_rastro_de_restauraciones(expected)
    with connect(fresh_db) as conn:
        catalog = conn.execute("SELECT id_backup, estado FROM historial_backup ORDER BY 1").fetchall()
        remote = conn.execute("SELECT id_backup, estado, objeto FROM copia_remota ORDER BY 1").fetchall()
    assert catalog == [(ids[0], "COMPLETADO"), (ids[1], "COMPLETADO")]
    assert [(r[0], r[1]) for r in remote] == [(ids[0], "COPIADO"), (ids[1], "COPIADO")]
    assert all(r[2].endswith(".sql.gz.age") for r in remote)
    # BACKUP_PATH vuelve a tener los archivos (verificables como cualquier backup local).
    out = run_cli(env, "backup", "verificar", "--todos")
    assert out.returncode == 0, out.stdout + out.stderr


def test_backup_forjado_sin_cifrar_no_se_aplica(
    cli_env: dict[str, str], fresh_db: DatabaseServer, tmp_path: Path
) -> None:
    """Quien solo escribe en el remoto (sin la identidad) deja un backup EN CLARO, más reciente y con
    id mayor, con SQL y meta-órdenes de psql: la recuperación con la identidad lo rechaza sin tocar
    la base."""
    import gzip
    import hashlib
    import json

    from inventario.modules.backup.dump import EPILOGUE, PROLOGUE, QUIET

    with destino("dir", tmp_path / "remoto") as dest:
        key = tmp_path / "clave.txt"
        env = con_cifrado(cli_env, dest.remote, key)
        fill(fresh_db, productos=5)
        assert run_cli(env, "backup", "ejecutar", "--tipo", "COMPLETO").returncode == 0
        assert run_cli(env, "backup", "remoto", "subir", "--pendientes").returncode == 0
        before = snapshot(fresh_db)

        pwned = tmp_path / "pwned"
        name = "backup_20991231_235959_FULL.sql.gz"
        sql = (
            QUIET
            + PROLOGUE
            + f"\\! id > {pwned}\n".encode()
            + b"CREATE TABLE public.atacante (x int);\n"
            + EPILOGUE
        )
        data = gzip.compress(sql)
        real = json.loads(next(Path(env["BACKUP_PATH"]).glob("*.manifest.json")).read_text())
        manifest = json.dumps(
            dict(
                real, id_backup=999999, nombre_archivo=name, hash_md5=hashlib.md5(data).hexdigest(), tablas=[]
            )
        ).encode()
        (dest.storage / (name + ".manifest.json")).write_bytes(manifest)
        forjar(dest.storage, name, data, manifest, id_backup=999999)

        out = run_cli(env, "backup", "restaurar", "--desde-remoto", "--identidad", str(key), "--si")
        assert out.returncode == 1, out.stdout + out.stderr
        assert "No se restauró nada" in out.stderr and "NO está cifrado" in out.stderr
        assert "999999" in out.stderr and name in out.stderr and "Traceback" not in out.stderr
        assert not pwned.exists()
        assert snapshot(fresh_db) == before
        assert not (Path(env["BACKUP_PATH"]) / name).exists()
        # Sin --identidad pero con BACKUP_CIFRADO_DESTINATARIOS configurado, tampoco.
        out = run_cli(env, "backup", "restaurar", "--desde-remoto", "999999", "--si")
        assert out.returncode == 1 and "NO está cifrado" in out.stderr, out.stdout + out.stderr
        assert not pwned.exists() and snapshot(fresh_db) == before


def test_tras_recuperar_un_punto_anterior_los_ids_no_se_repiten(
    cli_env: dict[str, str], fresh_db: DatabaseServer, pg_server: DatabaseServer, tmp_path: Path
) -> None:
    """Se recupera del remoto el punto 2 (el 3 tenía un error) y se sigue trabajando: el backup nuevo
    no reutiliza el id 3 y la siguiente recuperación «la más reciente» es la línea nueva."""

    def lose_everything(env: dict[str, str]) -> None:
        drop_database(pg_server, fresh_db.database)
        shutil.rmtree(env["BACKUP_PATH"])
        shutil.rmtree(env["DATA_PATH"], ignore_errors=True)
        with admin_conn(pg_server) as conn:
            conn.execute(f'CREATE DATABASE "{fresh_db.database}" TEMPLATE template0')

    def names() -> list[str]:
        with connect(fresh_db) as conn:
            return [r[0] for r in conn.execute("SELECT nombre FROM productos ORDER BY id_producto")]

    with destino("dir", tmp_path / "remoto") as dest:
        key = tmp_path / "clave.txt"
        env = con_cifrado(cli_env, dest.remote, key)
        fill(fresh_db, productos=3)
        assert run_cli(env, "backup", "ejecutar", "--tipo", "COMPLETO").returncode == 0
        for name in ("linea-vieja-2", "linea-vieja-3-ERROR"):
            with connect(fresh_db) as conn:
                conn.execute("UPDATE productos SET nombre = %s WHERE id_producto = 1", (name,))
            assert run_cli(env, "backup", "ejecutar", "--tipo", "DIFERENCIAL").returncode == 0
        assert run_cli(env, "backup", "remoto", "subir", "--pendientes").returncode == 0

        lose_everything(env)
        out = run_cli(env, "backup", "restaurar", "--desde-remoto", "2", "--identidad", str(key), "--si")
        assert out.returncode == 0, out.stdout + out.stderr
        with connect(fresh_db) as conn:
            conn.execute("UPDATE productos SET nombre = 'linea-nueva' WHERE id_producto = 1")
        assert run_cli(env, "backup", "ejecutar", "--tipo", "DIFERENCIAL").returncode == 0
        with connect(fresh_db) as conn:
            new_id = conn.execute("SELECT max(id_backup) FROM historial_backup").fetchone()[0]
        assert new_id == 4, "el backup nuevo repite un id que ya está en el remoto"
        assert run_cli(env, "backup", "remoto", "subir", "--pendientes").returncode == 0
        expected = names()
        assert expected[0] == "linea-nueva"

        lose_everything(env)
        out = run_cli(env, "backup", "restaurar", "--desde-remoto", "--identidad", str(key), "--si")
        assert out.returncode == 0, out.stdout + out.stderr
        assert names() == expected


def test_perdida_total_con_incrementales_recupera_el_ultimo_y_un_punto_anterior(
    env: dict[str, str], s3: Destino, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    """El RPO fuera del sitio es el de los incrementales: perdido todo, `--desde-remoto` vuelve al
    último incremental (completo + diferencial + incrementales bajados y aplicados en orden), y con
    un id, a un incremental anterior de la misma cadena."""
    fill(fresh_db, productos=30)
    states: dict[int, dict] = {}
    for tipo, cambio in (
        ("COMPLETO", None),
        ("DIFERENCIAL", "UPDATE productos SET nombre = 'dif' WHERE id_producto <= 5"),
        ("INCREMENTAL", "DELETE FROM movimientos WHERE id_movimiento IN (2, 3)"),
        (
            "INCREMENTAL",
            "UPDATE movimientos SET id_movimiento = id_movimiento + 100000 WHERE id_movimiento = 5",
        ),
        ("INCREMENTAL", "INSERT INTO productos (codigo, nombre) VALUES ('INC-3', 'del tercero')"),
    ):
        if cambio:
            with connect(fresh_db) as conn:
                conn.execute(cambio)
        state = snapshot(fresh_db)
        out = run_cli(env, "backup", "ejecutar", "--tipo", tipo)
        assert out.returncode == 0, out.stderr
        with connect(fresh_db) as conn:
            row = conn.execute(
                "SELECT id_backup, tipo FROM historial_backup ORDER BY 1 DESC LIMIT 1"
            ).fetchone()
        assert row is not None and row[1] == tipo
        states[row[0]] = state
    ids = list(states)
    out = run_cli(env, "backup", "remoto", "subir", "--pendientes")
    assert out.returncode == 0, out.stdout + out.stderr

    perder_todo(env, fresh_db, pg_server)

    out = run_cli(env, "backup", "restaurar", "--desde-remoto", "--identidad", env["IDENTIDAD"], "--si")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Restaurado INCREMENTAL {ids[-1]}" in out.stdout, out.stdout
    assert sin_rastro_de_restauraciones(snapshot(fresh_db)) == sin_rastro_de_restauraciones(states[ids[-1]])

    # Un punto anterior de la misma cadena (el primer incremental), por id, también desde el remoto.
    shutil.rmtree(env["BACKUP_PATH"])
    out = run_cli(
        env, "backup", "restaurar", str(ids[2]), "--desde-remoto", "--identidad", env["IDENTIDAD"], "--si"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Restaurado INCREMENTAL {ids[2]}" in out.stdout, out.stdout
    assert sin_rastro_de_restauraciones(snapshot(fresh_db)) == sin_rastro_de_restauraciones(states[ids[2]])
