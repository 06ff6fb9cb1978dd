"""Backups INCREMENTALES contra PostgreSQL, pg_dump y psql reales: orden, estado previo y "sin cambios"."""

from __future__ import annotations

import pytest

from inventario.modules.backup.service import BackupService, SinCambios
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import connect, drop_database, new_database, psql_file, snapshot
from tests.test_backup_motor import fill


def _touch(server: DatabaseServer, nombre: str) -> None:
    with connect(server) as conn:
        conn.execute(
            "UPDATE productos SET nombre = %s WHERE id_producto = (SELECT min(id_producto) FROM productos)",
            (nombre,),
        )


def test_incremental_fuera_de_orden_o_sobre_una_base_cambiada_se_niega_sin_tocar_nada(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "PRUEBA")
    full_state = snapshot(fresh_db)
    _touch(fresh_db, "uno")
    first = service.run("INCREMENTAL", "PRUEBA")
    _touch(fresh_db, "dos")
    with connect(fresh_db) as conn:
        conn.execute(
            "DELETE FROM movimientos WHERE id_movimiento = (SELECT max(id_movimiento) FROM movimientos)"
        )
    second = service.run("INCREMENTAL", "PRUEBA")
    assert (first.tipo, first.id_backup_base) == ("INCREMENTAL", full.id_backup)
    assert (second.tipo, second.id_backup_base) == ("INCREMENTAL", first.id_backup)
    assert second.nombre_archivo.endswith("_INCR.sql.gz")
    final_state = snapshot(fresh_db)
    directory = runtime.settings.backup_dir
    target = new_database(pg_server, fresh_db.database + "_orden")
    try:
        # Sobre una base vacía: ni siquiera hay un punto de restauración.
        result = psql_file(runtime, target, directory / first.nombre_archivo)
        assert result.returncode != 0
        assert "restaure primero la cadena hasta ese backup" in result.stderr.decode()
        assert psql_file(runtime, target, directory / full.nombre_archivo).returncode == 0
        # El segundo sin el primero: se niega nombrando el que falta, y nada cambia.
        result = psql_file(runtime, target, directory / second.nombre_archivo)
        message = result.stderr.decode()
        assert result.returncode != 0
        assert first.nombre_archivo in message and f"backup {full.id_backup}" in message, message
        assert snapshot(target) == full_state
        for row in (first, second):
            result = psql_file(runtime, target, directory / row.nombre_archivo)
            assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr.decode()
        assert snapshot(target) == final_state
        # Una base que cambió después de restaurar no acepta otra vez el incremental.
        _touch(target, "cambio local")
        result = psql_file(runtime, target, directory / second.nombre_archivo)
        assert (
            result.returncode != 0
            and "hay filas escritas después en la tabla productos" in result.stderr.decode()
        )
    finally:
        drop_database(pg_server, target.database)


def test_incremental_del_job_no_escribe_nada_si_nada_cambio(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "PRUEBA")
    directory = runtime.settings.backup_dir
    files = sorted(p.name for p in directory.iterdir())
    with pytest.raises(SinCambios) as skipped:
        service.start("INCREMENTAL", "PROGRAMADO", skip_unchanged=True)
    assert skipped.value.base.id_backup == full.id_backup
    assert sorted(p.name for p in directory.iterdir()) == files
    # Lo que escribe la propia maquinaria (catálogo, ejecuciones de jobs) no cuenta como cambio.
    with connect(fresh_db) as conn:
        conn.execute("UPDATE historial_backup SET nota = 'x' WHERE id_backup = %s", (full.id_backup,))
    with pytest.raises(SinCambios):
        service.start("INCREMENTAL", "PROGRAMADO", skip_unchanged=True)
    # Una secuencia que avanzó sin filas (un INSERT que falló) sí es un cambio.
    with connect(fresh_db) as conn:
        conn.execute("SELECT nextval('productos_id_producto_seq')")
    row = service.start("INCREMENTAL", "PROGRAMADO", skip_unchanged=True).finish()
    assert row.tipo == "INCREMENTAL" and row.id_backup_base == full.id_backup
    with pytest.raises(SinCambios):
        service.start("INCREMENTAL", "PROGRAMADO", skip_unchanged=True)
    # Una transacción abierta durante el incremental que confirma después, con sellos anteriores
    # a su instantánea: también es un cambio, aunque ninguna fila sea posterior al backup.
    with connect(fresh_db, autocommit=False) as open_tx:
        open_tx.execute("SELECT now()")
        _touch(fresh_db, "antes")
        before = service.run("INCREMENTAL", "PRUEBA")
        with pytest.raises(SinCambios):
            service.start("INCREMENTAL", "PROGRAMADO", skip_unchanged=True)
        open_tx.execute("UPDATE lotes SET cantidad = cantidad + 1")
        open_tx.commit()
    after = service.start("INCREMENTAL", "PROGRAMADO", skip_unchanged=True).finish()
    assert after.id_backup_base == before.id_backup


def test_tras_restaurar_un_punto_viejo_el_siguiente_es_completo(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    _touch(fresh_db, "uno")
    first = service.run("INCREMENTAL", "PRUEBA")
    _touch(fresh_db, "dos")
    service.run("INCREMENTAL", "PRUEBA")
    # La base de producción vuelve al primer incremental: el segundo ya no describe su pasado.
    directory = runtime.settings.backup_dir
    with runtime.session_factory() as session:
        full_name = service.get(session, first.id_backup_base).nombre_archivo  # type: ignore[arg-type]
    for name in (full_name, first.nombre_archivo):
        result = psql_file(runtime, fresh_db, directory / name)
        assert result.returncode == 0, result.stderr.decode()
    with runtime.session_factory() as session:
        service.sync_catalog(session)
    _touch(fresh_db, "tres")
    row = service.run("INCREMENTAL", "PRUEBA")
    assert row.tipo == "COMPLETO"
    assert row.nota and f"se restauró al backup {first.id_backup}" in row.nota
