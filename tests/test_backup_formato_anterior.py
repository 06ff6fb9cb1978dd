"""Backups escritos por una versión anterior (commit df0083d: zlib de Python, DIFERENCIAL/INCREMENTAL
con tablas temporales de claves) se restauran con esta, exactos.

`tests/datos/formato_20261201/` guarda una cadena real de aquella versión (COMPLETO, DIFERENCIAL y
tres INCREMENTALES con altas, cambios y bajas) y `huellas.txt`, el md5 de cada tabla y la secuencia
de productos en la base viva al hacer el último (sin el aviso RESTAURACION que la restauración
deja en la base restaurada). Quien cambie el formato de los archivos no puede
dejar de restaurar los que ya tienen los usuarios.

También la cadena mixta: sobre la base restaurada con la cadena vieja, esta versión sigue la
cadena con un INCREMENTAL nuevo, y los seis archivos (cinco viejos y uno nuevo) restauran con psql,
en orden, al mismo estado que la base viva."""

from __future__ import annotations

import shutil
from pathlib import Path

from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import connect, drop_database, new_database, psql_file
from tests.conftest import run_cli

DATOS = Path(__file__).parent / "datos" / "formato_20261201"
HUELLAS = """
SELECT 'productos', md5(string_agg(t::text, E'\\n' ORDER BY id_producto)) FROM productos t
UNION ALL SELECT 'lotes', md5(string_agg(t::text, E'\\n' ORDER BY id_lote)) FROM lotes t
UNION ALL SELECT 'movimientos', md5(string_agg(t::text, E'\\n' ORDER BY id_movimiento)) FROM movimientos t
UNION ALL SELECT 'notificaciones', md5(string_agg(t::text, E'\\n' ORDER BY id_notificacion))
  FROM notificaciones t WHERE tipo <> 'RESTAURACION'
UNION ALL SELECT 'productos_seq', last_value::text FROM productos_id_producto_seq
"""


def _esperadas() -> dict[str, str]:
    pares = (line.split() for line in (DATOS / "huellas.txt").read_text().splitlines() if line.strip())
    return {nombre: valor for nombre, valor in pares}


def _huellas(db: DatabaseServer) -> dict[str, str]:
    with connect(db) as conn:
        return {str(n): str(v) for n, v in conn.execute(HUELLAS).fetchall()}


def test_cadena_del_formato_anterior_con_la_aplicacion_y_a_mano(
    runtime: Runtime,
    pg_server: DatabaseServer,
    cli_env: dict[str, str],
    tmp_path: Path,
    fresh_db: DatabaseServer,
) -> None:
    backups = tmp_path / "backups_anteriores"
    shutil.copytree(DATOS, backups)
    (backups / "huellas.txt").unlink()
    archivos = sorted(backups.glob("*.sql.gz"))
    assert [a.name.rsplit("_", 1)[1] for a in archivos] == [
        "FULL.sql.gz", "DIFF.sql.gz", "INCR.sql.gz", "INCR.sql.gz", "INCR.sql.gz",
    ]  # fmt: skip
    esperadas = _esperadas()

    # La aplicación: verifica MD5 y cadena y aplica todo en una transacción.
    con_app = new_database(pg_server, fresh_db.database + "_anterior_app")
    a_mano = new_database(pg_server, fresh_db.database + "_anterior_psql")
    try:
        env = {**cli_env, "BACKUP_PATH": str(backups)}
        url = con_app.url.render_as_string(hide_password=False)
        out = run_cli(env, "backup", "verificar", "5")
        assert out.returncode == 0, out.stdout + out.stderr
        out = run_cli(env, "backup", "restaurar", "5", "--destino", url)
        assert out.returncode == 0, out.stdout + out.stderr
        assert _huellas(con_app) == esperadas

        # A mano, archivo por archivo, como en el README.
        for archivo in archivos:
            resultado = psql_file(runtime, a_mano, archivo)
            assert resultado.returncode == 0 and b"ERROR" not in resultado.stderr, resultado.stderr
        assert _huellas(a_mano) == esperadas

        # Cadena mixta: esta versión sigue la cadena vieja donde quedó.
        with connect(con_app) as conn:
            conn.execute(
                "INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, motivo, id_usuario) "
                "SELECT 'ENTRADA', id_producto, id_lote, 2, 'formato nuevo', "
                "(SELECT min(id_usuario) FROM usuarios) FROM lotes ORDER BY id_lote LIMIT 3"
            )
            conn.execute(
                "UPDATE productos SET nombre = nombre || ' (nuevo)' WHERE id_producto IN "
                "(SELECT min(id_producto) FROM productos)"
            )
            conn.execute(
                "DELETE FROM movimientos WHERE id_movimiento = (SELECT min(id_movimiento) FROM movimientos)"
            )
        env_app = {**env, "DATABASE_URL": url}
        out = run_cli(env_app, "backup", "ejecutar", "--tipo", "INCREMENTAL")
        assert out.returncode == 0, out.stdout + out.stderr
        nuevos = sorted(set(backups.glob("*.sql.gz")) - set(archivos))
        assert [n.name.rsplit("_", 1)[1] for n in nuevos] == ["INCR.sql.gz"], out.stdout
        vivas = _huellas(con_app)
        assert vivas != esperadas  # el incremental nuevo lleva cambios de verdad
        mixta = new_database(pg_server, fresh_db.database + "_mixta_psql")
        try:
            for archivo in [*archivos, *nuevos]:
                resultado = psql_file(runtime, mixta, archivo)
                assert resultado.returncode == 0 and b"ERROR" not in resultado.stderr, resultado.stderr
            assert _huellas(mixta) == vivas
        finally:
            drop_database(pg_server, mixta.database)
    finally:
        drop_database(pg_server, con_app.database)
        drop_database(pg_server, a_mano.database)
