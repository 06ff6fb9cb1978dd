"""La consola `inventario backup`: lo que un operador hace cuando la web no está."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from inventario.arranque import url_sin_clave
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.repo import MANIFEST_SUFFIX
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import connect, drop_database, new_database, sin_rastro_de_restauraciones, snapshot
from tests.backup_support import fill_inventario as fill
from tests.conftest import run_cli


def test_ejecutar_listar_y_limpiar_por_consola(cli_env: dict[str, str], fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    out = run_cli(cli_env, "backup", "ejecutar", "--tipo", "COMPLETO", "--usuario", "ana")
    assert out.returncode == 0, out.stderr
    assert "Backup COMPLETO 1 completado" in out.stdout
    out = run_cli(cli_env, "backup", "ejecutar", "--tipo", "DIFERENCIAL")
    assert out.returncode == 0 and "Backup DIFERENCIAL 2 completado" in out.stdout, out.stderr
    out = run_cli(cli_env, "backup", "listar")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert lines[1].split()[:3] == ["2", "DIFERENCIAL", "COMPLETADO"] and lines[2].split()[:3] == [
        "1",
        "COMPLETO",
        "COMPLETADO",
    ]
    out = run_cli(cli_env, "backup", "ejecutar", "--tipo", "SEMANAL")
    assert out.returncode == 2 and "--tipo debe ser COMPLETO, DIFERENCIAL, INCREMENTAL o AUTO" in out.stderr
    out = run_cli(cli_env, "backup", "limpiar")
    assert out.returncode == 0 and "Eliminados 0 backups" in out.stdout


def test_restaurar_diferencial_en_otra_base_y_catalogo_completo(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer, cli_env: dict[str, str]
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "MANUAL")
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'después del completo' WHERE id_producto < 5")
        conn.execute("DELETE FROM movimientos WHERE id_movimiento = 3")
    diff = service.run("DIFERENCIAL", "MANUAL")
    expected = snapshot(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'más tarde' WHERE id_producto < 10")
    later = service.run("COMPLETO", "MANUAL")  # hecho DESPUÉS del punto restaurado
    target = new_database(pg_server, fresh_db.database + "_r")
    try:
        url = target.url.render_as_string(hide_password=False)
        out = run_cli(cli_env, "backup", "restaurar", str(diff.id_backup), "--destino", url)
        assert out.returncode == 0, out.stderr
        assert f"Restaurado DIFERENCIAL {diff.id_backup}" in out.stdout
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(expected)
        # La restauración queda registrada en la base restaurada: fila, aviso y app.log.
        with connect(target) as conn:
            (fila,) = conn.execute(
                "SELECT resultado, id_backup, archivos, destino, ejecutado_por, duracion_segundos, filas "
                "FROM restauraciones"
            ).fetchall()
            aviso = conn.execute(
                "SELECT titulo, semaforo FROM notificaciones WHERE tipo = 'RESTAURACION'"
            ).fetchall()
        assert fila[:3] == ("OK", diff.id_backup, f"{full.nombre_archivo}, {diff.nombre_archivo}")
        assert fila[3] == url_sin_clave(target.url) and target.database in fila[3]  # sin contraseña
        assert fila[4].startswith("consola:") and fila[5] >= 0 and fila[6] > 0
        assert aviso == [(f"♻️ Restaurado el backup DIFERENCIAL {diff.id_backup}", "VERDE")]
        # Sale con estadísticas: los backups siguientes no esperan a autovacuum para usar índices.
        with connect(target) as conn:
            sin_analizar = conn.execute(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NULL AND "
                "last_autoanalyze IS NULL AND relname IN ('productos', 'lotes', 'movimientos')"
            ).fetchall()
        assert sin_analizar == []
        app_log = (runtime.settings.logs_dir / "app.log").read_text()
        assert f"Restauración OK: backup DIFERENCIAL {diff.id_backup}" in app_log
        # El catálogo restaurado conoce todos los archivos del disco, también el posterior.
        with connect(target) as conn:
            rows = conn.execute("SELECT id_backup, estado FROM historial_backup ORDER BY 1").fetchall()
        assert rows == [
            (full.id_backup, "COMPLETADO"),
            (diff.id_backup, "COMPLETADO"),
            (later.id_backup, "COMPLETADO"),
        ]
        # Sobre una base con datos pide confirmación; sin confirmar no toca nada.
        before = snapshot(target)
        out = run_cli(cli_env, "backup", "restaurar", full.nombre_archivo, "--destino", url, input="n\n")
        assert out.returncode == 1 and "será REEMPLAZADA" in out.stdout and "[s/N]" in out.stdout
        assert out.stderr.strip().endswith("Cancelado: no se cambió nada.")
        assert snapshot(target) == before
        # "sí" (o "s") confirma, como "--si".
        out = run_cli(cli_env, "backup", "restaurar", full.nombre_archivo, "--destino", url, input="sí\n")
        assert out.returncode == 0, out.stderr
        assert snapshot(target) != before
        # El backup no trae el registro de la restauración anterior: se conserva igual.
        with connect(target) as conn:
            filas = conn.execute("SELECT resultado, id_backup FROM restauraciones ORDER BY 1, 2").fetchall()
        assert sorted(filas) == sorted([("OK", diff.id_backup), ("OK", full.id_backup)])
    finally:
        drop_database(pg_server, target.database)


def test_restaurar_archivo_corrupto_se_rechaza_antes_de_tocar_nada(
    runtime: Runtime, fresh_db: DatabaseServer, cli_env: dict[str, str]
) -> None:
    fill(fresh_db)
    row = BackupService(runtime).run("COMPLETO", "MANUAL")
    with connect(fresh_db) as conn:
        conn.execute("INSERT INTO productos (codigo, nombre) VALUES ('MARCA', 'después del backup')")
    before = snapshot(fresh_db)
    path = runtime.settings.backup_dir / row.nombre_archivo
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    out = run_cli(cli_env, "backup", "restaurar", str(row.id_backup), "--si")
    assert out.returncode == 1
    assert "No se restauró nada" in out.stderr
    assert "MD5 no coincide" in out.stderr or "gzip está dañado" in out.stderr
    assert snapshot(fresh_db) == before
    out = run_cli(cli_env, "backup", "verificar", str(row.id_backup))
    assert out.returncode == 1 and "ERROR" in out.stdout


def test_verificar_todos_con_restauracion_de_prueba(
    runtime: Runtime, fresh_db: DatabaseServer, cli_env: dict[str, str]
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "MANUAL")
    with connect(fresh_db) as conn:
        conn.execute("DELETE FROM movimientos WHERE id_movimiento IN (1, 2)")
    diff = service.run("DIFERENCIAL", "MANUAL")
    out = run_cli(cli_env, "backup", "verificar", "--todos", "--restaurar-prueba")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("OK") == 2 and "iguales al manifiesto" in out.stdout
    # Un manifiesto que miente sobre las filas se detecta en la restauración de prueba.
    mpath = runtime.settings.backup_dir / (diff.nombre_archivo + MANIFEST_SUFFIX)
    manifest = json.loads(mpath.read_text())
    for table in manifest["tablas"]:
        if table["nombre"] == "movimientos":
            table["filas"] += 1
    mpath.write_text(json.dumps(manifest))
    out = run_cli(cli_env, "backup", "verificar", str(diff.id_backup), "--restaurar-prueba")
    assert out.returncode == 1 and "las filas no coinciden" in out.stdout
    # Sin su completo, un diferencial no vale.
    (runtime.settings.backup_dir / full.nombre_archivo).unlink()
    out = run_cli(cli_env, "backup", "verificar", str(diff.id_backup))
    assert out.returncode == 1 and "Falta el backup base" in out.stdout


def test_arranque_recupera_y_sincroniza_catalogo(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "MANUAL")
    # Como si la base se hubiera restaurado desde antes de ese backup: el catálogo no lo conoce.
    with connect(fresh_db) as conn:
        conn.execute("DELETE FROM historial_backup")
    assert service.recover()["sincronizados"] == 1
    with runtime.session_factory() as session:
        row = session.scalars(select(HistorialBackup)).one()
    assert (row.id_backup, row.estado, row.hash_md5) == (full.id_backup, "COMPLETADO", full.hash_md5)
    assert row.fecha_creacion == full.fecha_creacion
    # El siguiente backup no reutiliza su id.
    assert service.run("COMPLETO", "MANUAL").id_backup == full.id_backup + 1


def test_la_barra_de_restauracion_llega_al_100(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    from inventario.modules.backup import restore
    from inventario.modules.backup.repo import BackupRepo

    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "MANUAL")
    diff = service.run("DIFERENCIAL", "MANUAL")
    chain = BackupRepo(runtime.settings.backup_dir).chain(str(diff.id_backup))
    assert len(chain) == 2
    total = sum(link.manifest.tamanio_sin_comprimir for link in chain)
    avance: list[int] = []
    target = new_database(pg_server, fresh_db.database + "_p")
    try:
        restore.apply_chain(chain, target, runtime.pg_tools().path("psql"), progress=avance.append)
    finally:
        drop_database(pg_server, target.database)
    assert sum(avance) == total and all(n >= 0 for n in avance)


def test_archivos_anteriores_sin_modo_silencioso_se_siguen_leyendo(tmp_path: Path) -> None:
    from inventario.modules.backup.dump import EPILOGUE, PROLOGUE, QUIET
    from inventario.modules.backup.restore import _body

    for prefijo in (b"", QUIET):
        path = tmp_path / "b.sql.gz"
        path.write_bytes(gzip.compress(prefijo + PROLOGUE + b"SELECT 1;\n" + EPILOGUE))
        assert b"".join(_body(path)) == b"SELECT 1;\n"


def test_hasta_en_los_cambios_de_horario_nunca_toma_un_momento_posterior() -> None:
    """`--hasta` en una zona con horario de verano: la hora que no existe (el reloj salta de 02:00 a
    03:00) y la que se repite se resuelven hacia el pasado."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from inventario.modules.backup.cli import earliest_instant

    ny = ZoneInfo("America/New_York")
    # 2024-03-10 02:30 no existe: el salto fue a las 07:00 UTC; nunca después de eso.
    salto = earliest_instant(datetime(2024, 3, 10, 2, 30), ny).astimezone(UTC)
    assert salto <= datetime(2024, 3, 10, 7, 0, tzinfo=UTC)
    # 2024-11-03 01:30 ocurre dos veces (05:30 y 06:30 UTC): la primera.
    repetida = earliest_instant(datetime(2024, 11, 3, 1, 30), ny).astimezone(UTC)
    assert repetida == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    # Una hora normal, tal cual.
    normal = earliest_instant(datetime(2024, 6, 1, 12, 0), ny).astimezone(UTC)
    assert normal == datetime(2024, 6, 1, 16, 0, tzinfo=UTC)
    mexico = earliest_instant(datetime(2026, 12, 1, 18, 0), ZoneInfo("America/Mexico_City"))
    assert mexico.astimezone(UTC) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


def test_hasta_acepta_la_fecha_de_la_api_una_fecha_sola_y_segundos() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from inventario.modules.backup.cli import _moment

    mx = ZoneInfo("America/Mexico_City")
    # Tal como la da GET /backup/puntos-restauracion (fecha_instantanea, con zona).
    api = _moment("2026-12-01T18:49:23.172149-06:00", mx)
    assert api == datetime(2026, 12, 2, 0, 49, 23, 172149, tzinfo=UTC)
    assert _moment("2026-12-01 18:49:16", mx) == datetime(2026, 12, 1, 18, 49, 16, tzinfo=mx)
    assert _moment("2026-12-01T18:49", mx) == datetime(2026, 12, 1, 18, 49, tzinfo=mx)
    assert _moment("2026-12-01", mx) == datetime(2026, 12, 1, 23, 59, 59, tzinfo=mx)  # el día entero


def test_restaurar_con_destino_malo_explica_en_espanol(
    cli_env: dict[str, str], runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    row = BackupService(runtime).run("COMPLETO", "PRUEBA")
    sin_base = fresh_db.with_database("no_existe_esta_base").url.render_as_string(hide_password=False)
    r = run_cli(cli_env, "backup", "restaurar", str(row.id_backup), "--destino", sin_base, "--si")
    assert r.returncode == 1
    assert "la base no_existe_esta_base no existe en ese servidor: créela antes" in r.stderr, r.stderr
    assert "does not exist" not in r.stderr and "OperationalError" not in r.stderr
    r = run_cli(cli_env, "backup", "restaurar", str(row.id_backup), "--destino", "basura", "--si")
    assert r.returncode == 2 and "--destino debe ser una URL postgresql://" in r.stderr, r.stderr
    assert "Could not parse" not in r.stderr


def test_gzip_danado_se_explica_en_espanol(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    row = service.run("COMPLETO", "PRUEBA")
    path = runtime.settings.backup_dir / row.nombre_archivo
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as failed:
        service.repo.verify(service.repo.find(row.nombre_archivo))
    text = str(failed.value)
    assert "el gzip está dañado (" in text or "el MD5 no coincide" in text, text
    assert "Error -3" not in text and "invalid" not in text, text


def test_restaurar_la_base_del_servicio_a_un_punto_viejo_deja_ese_estado_como_el_mas_reciente(
    cli_env: dict[str, str], runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    """Completo, diferencial "bueno" y diferencial con un error; se restaura el bueno. Después, "lo
    último" (restaurar sin más, GET /puntos-restauracion, --hasta ahora) es el estado restaurado, no
    el error que se quiso deshacer."""
    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'bueno' WHERE id_producto = 1")
    bueno = service.run("DIFERENCIAL", "PRUEBA")
    estado_bueno = sin_rastro_de_restauraciones(snapshot(fresh_db))
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'ERROR' WHERE id_producto = 1")
    malo = service.run("DIFERENCIAL", "PRUEBA")
    out = run_cli(cli_env, "backup", "restaurar", str(bueno.id_backup), "--si")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "desde ahora es el punto más reciente" in out.stdout, out.stdout
    nuevo = service.restore_points()[0]
    assert nuevo.link.manifest.id_backup > malo.id_backup and nuevo.link.manifest.tipo == "COMPLETO"
    # Restaurar "lo último" ahora da el estado bueno.
    out = run_cli(cli_env, "backup", "restaurar", str(nuevo.link.manifest.id_backup), "--si")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "punto más reciente" not in out.stdout  # ya es el último: no hace falta otro COMPLETO
    assert sin_rastro_de_restauraciones(snapshot(fresh_db)) == estado_bueno
