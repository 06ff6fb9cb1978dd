"""Backups INCREMENTALES contra PostgreSQL, pg_dump y psql reales: orden, estado previo y "sin cambios"."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from inventario.config import Settings
from inventario.modules.backup.exceptions import BackupError, SinCambios
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.service import BackupService
from inventario.modules.planificador.service import JobsService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime, open_runtime
from tests.backup_support import (
    MIERCOLES,
    bloquear_pg_dump,
    cadena_restaurada,
    connect,
    drop_database,
    envejecer,
    fallo_sembrado,
    new_database,
    psql_file,
    sin_rastro_de_restauraciones,
    snapshot,
    tocar_producto,
)
from tests.backup_support import fill_inventario as fill
from tests.conftest import run_cli


def test_incremental_fuera_de_orden_o_sobre_una_base_cambiada_se_niega_sin_tocar_nada(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "PRUEBA")
    full_state = snapshot(fresh_db)
    tocar_producto(fresh_db, "uno")
    first = service.run("INCREMENTAL", "PRUEBA")
    tocar_producto(fresh_db, "dos")
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
        tocar_producto(target, "cambio local")
        result = psql_file(runtime, target, directory / second.nombre_archivo)
        assert (
            result.returncode != 0
            and "hay filas escritas después en la tabla productos" in result.stderr.decode()
        )
    finally:
        drop_database(pg_server, target.database)


def test_un_cambio_de_esquema_entre_incrementales_hace_un_completo_y_la_cadena_restaura(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    """Cualquier DDL entre dos incrementales: la huella ve tablas y columnas; las secuencias se
    comparan aparte (cada archivo fija todas las de su instantánea con setval, así que una creada o
    borrada desde el backup base no restauraría sobre él). La instantánea adelanta las consultas con
    el catálogo que vio el backup anterior del servicio y las descarta si no es idéntico."""
    fill(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute("CREATE SEQUENCE public.extra_seq")
        conn.execute("SELECT setval('public.extra_seq', 7)")
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "uno")
    first = service.run("INCREMENTAL", "PRUEBA")  # el servicio aprende el catálogo
    assert first.tipo == "INCREMENTAL" and service._schema_seen is not None
    manifest = service.repo.manifest(first.nombre_archivo)
    assert manifest is not None and manifest.secuencias and "extra_seq" in manifest.secuencias
    # 1) Una secuencia borrada: COMPLETO, y lo dice.
    with connect(fresh_db) as conn:
        conn.execute("DROP SEQUENCE public.extra_seq")
    tocar_producto(fresh_db, "dos")
    second = service.run("INCREMENTAL", "PRUEBA")
    assert second.tipo == "COMPLETO" and "extra_seq" in (second.nota or ""), second.nota
    tocar_producto(fresh_db, "dos bis")
    assert service.run("INCREMENTAL", "PRUEBA").tipo == "INCREMENTAL"
    # 2) Una secuencia nueva: COMPLETO también (el incremental la nombraría en su setval).
    with connect(fresh_db) as conn:
        conn.execute("CREATE SEQUENCE public.otra_seq")
        conn.execute("SELECT setval('public.otra_seq', 42)")
    tocar_producto(fresh_db, "tres")
    third = service.run("INCREMENTAL", "PRUEBA")
    assert third.tipo == "COMPLETO" and "otra_seq" in (third.nota or ""), third.nota
    tocar_producto(fresh_db, "tres bis")
    chain = [third, service.run("INCREMENTAL", "PRUEBA")]
    assert chain[1].tipo == "INCREMENTAL"
    manifest = service.repo.manifest(chain[1].nombre_archivo)
    assert manifest is not None and manifest.secuencias
    assert tuple(manifest.secuencias["otra_seq"]) == (42, True)
    # 3) Un cambio que la huella ve: COMPLETO, y lo dice.
    with connect(fresh_db) as conn:
        conn.execute("ALTER TABLE productos ADD COLUMN marca text")
    tocar_producto(fresh_db, "cuatro")
    fourth = service.run("INCREMENTAL", "PRUEBA")
    assert fourth.tipo == "COMPLETO" and "esquema cambió" in (fourth.nota or "")
    tocar_producto(fresh_db, "cinco")
    state = snapshot(fresh_db)
    chain = [fourth, service.run("INCREMENTAL", "PRUEBA")]
    assert chain[1].tipo == "INCREMENTAL"
    # La cadena final (con la secuencia nueva y la columna nueva) restaura con psql al estado de la base.
    archivos = [row.nombre_archivo for row in chain]
    with cadena_restaurada(runtime, pg_server, fresh_db, archivos, "_adelantado") as target:
        assert snapshot(target) == state


def test_catalogo_adelantado_se_comparte_y_si_no_coincide_se_relee_en_la_instantanea(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """El job crea un servicio en cada corrida: el catálogo visto es de la base, no de la instancia.
    Un cambio que la huella no ve (una clave foránea quitada) cambia el catálogo: lo adelantado se
    descarta, se relee en la misma instantánea y el incremental restaura igual."""
    fill(fresh_db)
    full = BackupService(runtime).run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "uno")
    first = BackupService(runtime).run("INCREMENTAL", "PRUEBA")
    assert first.tipo == "INCREMENTAL"
    calls: list[bool] = []
    original = BackupService._dependent

    def counted(*args: Any) -> Any:
        calls.append(True)
        return original(*args)

    monkeypatch.setattr(BackupService, "_dependent", staticmethod(counted))
    tocar_producto(fresh_db, "dos")
    second = BackupService(runtime).run("INCREMENTAL", "PRUEBA")
    assert second.tipo == "INCREMENTAL" and len(calls) == 1  # adelantado con lo que vio el anterior
    with connect(fresh_db) as conn:
        fk = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'public.movimientos'::regclass "
            "AND contype = 'f' AND confrelid = 'public.usuarios'::regclass"
        ).fetchone()
        assert fk is not None
        conn.execute(f'ALTER TABLE public.movimientos DROP CONSTRAINT "{fk[0]}"')
    tocar_producto(fresh_db, "tres")
    calls.clear()
    third = BackupService(runtime).run("INCREMENTAL", "PRUEBA")
    assert third.tipo == "INCREMENTAL", third.nota
    assert len(calls) == 2  # lo adelantado no coincidía: se pidió otra vez con el catálogo verdadero
    state = snapshot(fresh_db)
    archivos = [row.nombre_archivo for row in (full, first, second, third)]
    with cadena_restaurada(runtime, pg_server, fresh_db, archivos, "_releido") as target:
        assert snapshot(target) == state


@pytest.mark.parametrize("momento", ["antes_del_corte", "antes_de_la_instantanea"])
def test_truncate_entre_la_decision_y_la_instantanea_no_deja_un_incremental_que_restaure_mal(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer, momento: str
) -> None:
    """Un TRUNCATE no deja claves en registro_eliminaciones: `decide` lo ve y hace COMPLETO, pero uno
    confirmado después de `decide` solo se ve dentro de la instantánea. Antes, el incremental salía
    sin él y la cadena restauraba las filas vaciadas (y, antes del corte, todos los siguientes)."""
    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "uno")
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM movimientos").fetchone()[0] > 0
    method = "_insert_running" if momento == "antes_del_corte" else "_snapshot"
    original = getattr(service, method)

    def racing(*args: Any, **kwargs: Any) -> Any:
        with connect(fresh_db) as conn:
            conn.execute("TRUNCATE public.movimientos")
        setattr(service, method, original)
        return original(*args, **kwargs)

    setattr(service, method, racing)
    directory = runtime.settings.backup_dir
    before = {p.name for p in directory.glob("*.sql.gz")}
    with pytest.raises(BackupError) as failed:
        service.run("INCREMENTAL", "PRUEBA")
    assert "TRUNCATE (movimientos)" in failed.value.mensaje and "COMPLETO" in failed.value.mensaje
    assert {p.name for p in directory.glob("*.sql.gz")} == before  # ningún archivo que restaure mal
    tocar_producto(fresh_db, "dos")
    after = service.run("INCREMENTAL", "PRUEBA")
    assert after.tipo == "COMPLETO" and "TRUNCATE (movimientos)" in (after.nota or ""), after.nota
    tocar_producto(fresh_db, "tres")
    chain = [after, service.run("INCREMENTAL", "PRUEBA")]
    assert chain[1].tipo == "INCREMENTAL"
    state = snapshot(fresh_db)
    archivos = [row.nombre_archivo for row in chain]
    with cadena_restaurada(runtime, pg_server, fresh_db, archivos, "_vaciada") as target:
        assert snapshot(target) == state
        with connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM movimientos").fetchone()[0] == 0


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
    assert skipped.value.id_backup == full.id_backup
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
        tocar_producto(fresh_db, "antes")
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
    tocar_producto(fresh_db, "uno")
    first = service.run("INCREMENTAL", "PRUEBA")
    tocar_producto(fresh_db, "dos")
    service.run("INCREMENTAL", "PRUEBA")
    # La base de producción vuelve al primer incremental: el segundo ya no describe su pasado.
    directory = runtime.settings.backup_dir
    with runtime.session_factory() as session:
        full_name = service.get(session, first.id_backup_base).nombre_archivo  # type: ignore[arg-type]  # un incremental siempre tiene base
    for name in (full_name, first.nombre_archivo):
        result = psql_file(runtime, fresh_db, directory / name)
        assert result.returncode == 0, result.stderr.decode()
    service.recover()  # lo que hace el arranque tras restaurar: catálogo desde los manifiestos
    tocar_producto(fresh_db, "tres")
    row = service.run("INCREMENTAL", "PRUEBA")
    assert row.tipo == "COMPLETO"
    assert row.nota and f"se restauró al backup {first.id_backup}" in row.nota


@pytest.mark.parametrize("dano", ["archivo", "manifiesto", "tamaño"])
def test_un_eslabon_del_medio_que_falta_hace_completo_el_incremental_siguiente(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer, dano: str
) -> None:
    """Sin el primer incremental, el segundo ya no se restaura: uno nuevo encima tampoco se
    restauraría, así que se hace COMPLETO y la nota nombra el archivo que falta."""
    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "uno")
    first = service.run("INCREMENTAL", "PRUEBA")
    tocar_producto(fresh_db, "dos")
    second = service.run("INCREMENTAL", "PRUEBA")
    assert second.tipo == "INCREMENTAL", second.nota
    path = runtime.settings.backup_dir / first.nombre_archivo
    if dano == "archivo":
        path.unlink()
    elif dano == "manifiesto":
        path.with_name(path.name + ".manifest.json").unlink()
    else:
        with open(path, "ab") as fh:
            fh.write(b"\0")
    tocar_producto(fresh_db, "tres")
    row = service.run("INCREMENTAL", "PRUEBA")
    assert row.tipo == "COMPLETO"
    assert row.nota and f"backup {second.id_backup}" in row.nota and first.nombre_archivo in row.nota, (
        row.nota
    )
    assert "se hizo COMPLETO" in row.nota
    # La cadena nueva sigue con incrementales y restaura el estado de ahora.
    tocar_producto(fresh_db, "cuatro")
    after = service.run("INCREMENTAL", "PRUEBA")
    assert after.tipo == "INCREMENTAL" and after.id_backup_base == row.id_backup, after.nota
    expected = snapshot(fresh_db)
    with cadena_restaurada(
        runtime, pg_server, fresh_db, [row.nombre_archivo, after.nombre_archivo], "_tras_eslabon"
    ) as restored:
        assert snapshot(restored) == expected


# ------------------------------------------------------------------ restaurar a un punto


def _paso(server: DatabaseServer, service: BackupService, tipo: str, nombre: str) -> tuple:
    """Un cambio y un backup; devuelve el registro y el estado que guarda."""
    tocar_producto(server, nombre)
    with connect(server) as conn:
        conn.execute(
            "INSERT INTO productos (codigo, nombre) VALUES (%s, %s)", (f"N-{nombre}", f"nuevo {nombre}")
        )
    state = snapshot(server)
    row = service.run(tipo, "PRUEBA")
    assert row.tipo == tipo, row.nota
    time.sleep(1.1)  # instantáneas en segundos distintos: --hasta tiene resolución de segundos
    return row, state


def test_restaurar_hasta_una_hora_y_por_id_de_un_incremental_con_la_consola(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer, cli_env: dict[str, str]
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full, _ = _paso(fresh_db, service, "COMPLETO", "f")
    i1, s1 = _paso(fresh_db, service, "INCREMENTAL", "i1")
    diff, _ = _paso(fresh_db, service, "DIFERENCIAL", "d")
    i2, s2 = _paso(fresh_db, service, "INCREMENTAL", "i2")
    i3, s3 = _paso(fresh_db, service, "INCREMENTAL", "i3")
    assert (i2.id_backup_base, i3.id_backup_base) == (diff.id_backup, i2.id_backup)
    tz = runtime.settings.tz
    target = new_database(pg_server, fresh_db.database + "_pitr")
    url = target.url.render_as_string(hide_password=False)
    try:
        out = run_cli(cli_env, "backup", "restaurar", str(i1.id_backup), "--destino", url)
        assert out.returncode == 0, out.stderr
        assert f"Verificando 2 archivos: {full.nombre_archivo}, {i1.nombre_archivo}" in out.stdout
        assert f"Restaurado INCREMENTAL {i1.id_backup}" in out.stdout
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(s1)
        # Entre la instantánea de i2 y la de i3: vuelve a i2 (completo + diferencial + i2).
        assert i2.fecha_instantanea is not None and i3.fecha_instantanea is not None
        moment = i2.fecha_instantanea.replace(microsecond=0) + timedelta(seconds=1)
        assert i2.fecha_instantanea <= moment < i3.fecha_instantanea  # hay más de 1 s entre ambos
        hasta = moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        out = run_cli(cli_env, "backup", "restaurar", "--hasta", hasta, "--destino", url, "--si")
        assert out.returncode == 0, out.stderr
        assert f"backup {i2.id_backup} INCREMENTAL" in out.stdout
        assert (
            f"Verificando 3 archivos: {full.nombre_archivo}, {diff.nombre_archivo}, {i2.nombre_archivo}"
            in out.stdout
        )
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(s2)
        # Una hora después de todo: el último punto.
        later = (i3.fecha_instantanea + timedelta(hours=1)).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        out = run_cli(cli_env, "backup", "restaurar", "--hasta", later, "--destino", url, "--si")
        assert out.returncode == 0, out.stderr
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(s3)
        # Antes del primer backup, y con una fecha ilegible: nada que restaurar.
        before = (full.fecha_instantanea - timedelta(days=1)).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        out = run_cli(cli_env, "backup", "restaurar", "--hasta", before, "--destino", url, "--si")
        assert out.returncode == 1 and "ningún backup con el estado de la base" in out.stderr
        out = run_cli(cli_env, "backup", "restaurar", "--hasta", "ayer", "--destino", url, "--si")
        assert out.returncode == 2 and "AAAA-MM-DD HH:MM" in out.stderr
        # Falta un archivo del medio (el diferencial): se detecta antes de tocar nada.
        (runtime.settings.backup_dir / diff.nombre_archivo).unlink()
        out = run_cli(cli_env, "backup", "restaurar", str(i3.id_backup), "--destino", url, "--si")
        assert out.returncode == 1 and f"Falta el backup base {diff.nombre_archivo}" in out.stderr, out.stderr
        out = run_cli(cli_env, "backup", "restaurar", "--hasta", later, "--destino", url, "--si")
        assert out.returncode == 1 and f"Falta el backup base {diff.nombre_archivo}" in out.stderr, out.stderr
        assert f"El punto completo más reciente antes es el backup {i1.id_backup}" in out.stderr
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(s3)
    finally:
        drop_database(pg_server, target.database)


def test_un_incremental_que_falla_al_aplicarse_deshace_la_cadena_entera(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer, cli_env: dict[str, str]
) -> None:
    """Completo, incremental e incremental en UNA transacción: si el último falla a mitad (aquí un
    valor imposible con su MD5 y tamaños al día en el manifiesto, para que pase la verificación),
    la base de destino queda como estaba, sin el completo ni el primer incremental a medias."""
    fill(fresh_db)
    service = BackupService(runtime)
    _paso(fresh_db, service, "COMPLETO", "f")
    i1, s1 = _paso(fresh_db, service, "INCREMENTAL", "i1")
    i2, _ = _paso(fresh_db, service, "INCREMENTAL", "i2")
    directory = runtime.settings.backup_dir
    target = new_database(pg_server, fresh_db.database + "_deshace")
    url = target.url.render_as_string(hide_password=False)
    try:
        out = run_cli(cli_env, "backup", "restaurar", str(i1.id_backup), "--destino", url)
        assert out.returncode == 0, out.stderr
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(s1)
        # Un cambio que ningún backup tiene: si el completo o i1 quedaran aplicados, desaparecería.
        tocar_producto(target, "solo en el destino")
        before = snapshot(target)
        path = directory / i2.nombre_archivo
        with gzip.open(path, "rt") as fh:
            lines = fh.read().split("\n")
        copy_at = max(i for i, line in enumerate(lines) if line.startswith('COPY public."productos"'))
        lines.insert(copy_at + 1, "no-es-un-numero\tX\tY\t\\N\tunidad\t0\tt\t2026-01-01\t2026-01-01")
        text_sql = "\n".join(lines).encode()
        with gzip.open(path, "wb") as fh:
            fh.write(text_sql)
        mpath = path.with_name(path.name + ".manifest.json")
        manifest = json.loads(mpath.read_text())
        manifest.update(
            hash_md5=hashlib.md5(path.read_bytes()).hexdigest(),
            tamanio_bytes=path.stat().st_size,
            tamanio_sin_comprimir=len(text_sql),
        )
        mpath.write_text(json.dumps(manifest))
        out = run_cli(cli_env, "backup", "restaurar", str(i2.id_backup), "--destino", url, "--si")
        assert out.returncode == 1 and "invalid input syntax" in out.stderr + out.stdout, out.stderr
        after = snapshot(target)
        # Lo único nuevo en el destino es el rastro de la restauración fallida, escrito después:
        # su aviso ROJO y su fila en `restauraciones`.
        assert (
            "ROJO" in after["notificaciones"][-1] and "transacción revertida" in after["notificaciones"][-1]
        )
        assert len(after["restauraciones"]) == len(before["restauraciones"]) + 1
        assert sin_rastro_de_restauraciones(after) == sin_rastro_de_restauraciones(before)
    finally:
        drop_database(pg_server, target.database)


# ------------------------------------------------------------------ retención


def test_retencion_borra_incrementales_cubiertos_sin_romper_cadenas(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    rows = {}
    for name, tipo in [
        ("f1", "COMPLETO"),
        ("i1", "INCREMENTAL"),
        ("i2", "INCREMENTAL"),
        ("d1", "DIFERENCIAL"),
        ("i3", "INCREMENTAL"),
        ("i4", "INCREMENTAL"),
        ("d2", "DIFERENCIAL"),
        ("i5", "INCREMENTAL"),
    ]:
        tocar_producto(fresh_db, name)
        rows[name] = service.run(tipo, "PRUEBA")
        assert rows[name].tipo == tipo
    ids = {k: v.id_backup for k, v in rows.items()}
    # Edades: i1, i2 e i3 pasan de los 7 días; i4 no, y depende de i3; i5 es de la cadena más
    # reciente (después del último diferencial): se queda aunque sea viejo.
    envejecer(
        fresh_db,
        {ids["f1"]: 10, ids["i1"]: 9, ids["i2"]: 9, ids["d1"]: 8, ids["i3"]: 8, ids["i4"]: 1, ids["i5"]: 10},
    )
    result = service.cleanup()
    assert [r.id_backup for r in result.eliminados] == [ids["i1"], ids["i2"]]
    assert result.conservados_por_dependencia == [ids["i3"]]
    directory = runtime.settings.backup_dir
    for name in ("i1", "i2"):
        assert not (directory / rows[name].nombre_archivo).exists()
    # Todos los puntos que quedan se pueden restaurar: sus cadenas están enteras.
    points = service.restore_points()
    assert sorted(p.link.manifest.id_backup for p in points) == sorted(
        ids[n] for n in ("f1", "d1", "i3", "i4", "d2", "i5")
    )
    [i4] = [p for p in points if p.link.manifest.id_backup == ids["i4"]]
    assert [link.manifest.id_backup for link in i4.chain] == [ids["f1"], ids["d1"], ids["i3"], ids["i4"]]
    for link in i4.chain:
        service.repo.verify(link)


# ------------------------------------------------------------------ job backup_incremental


def _ledger(runtime: Runtime) -> Sequence[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT job_id, estado, mensaje FROM ejecuciones_job WHERE job_id = 'backup_incremental' "
                "ORDER BY id_ejecucion"
            )
        ).all()


def _notifications(runtime: Runtime) -> Sequence[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(
            text("SELECT titulo, semaforo FROM notificaciones WHERE tipo = 'BACKUP' ORDER BY id_notificacion")
        ).all()


def test_job_incremental_sin_cambios_no_escribe_y_cede_ante_el_diario_y_otro_backup(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    jobs = JobsService(runtime)
    directory = runtime.settings.backup_dir
    # Sin completo: el primero se hace COMPLETO y lo dice (VERDE: instalación nueva), con su ✅.
    first = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=10, minute=0, second=5))
    assert first.estado == "OK" and first.mensaje.startswith("Backup COMPLETO "), first.mensaje
    assert "el incremental se hizo COMPLETO" in first.mensaje
    assert _notifications(runtime) == [
        ("ℹ️ Primer backup: el incremental se hace COMPLETO", "VERDE"),
        ("✅ Backup COMPLETO completado", "VERDE"),
    ]
    # Los avisos del completo se escribieron después de su instantánea: son cambios (datos de
    # `notificaciones`), y el incremental siguiente los recoge.
    follow = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=10, minute=15, second=5))
    assert follow.estado == "OK" and follow.mensaje.startswith("Backup INCREMENTAL "), follow.mensaje
    files = sorted(p.name for p in directory.iterdir())
    # Nada cambió: OMITIDO, sin archivo ni fila.
    second = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=10, minute=30, second=5))
    assert second.estado == "OMITIDO" and second.mensaje.startswith("Sin cambios desde el backup"), (
        second.mensaje
    )
    assert sorted(p.name for p in directory.iterdir()) == files
    # Algo cambió: un INCREMENTAL, sin notificación de éxito.
    tocar_producto(fresh_db, "venta")
    third = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=10, minute=45, second=5))
    assert third.estado == "OK" and third.mensaje.startswith("Backup INCREMENTAL "), third.mensaje
    assert len(list(directory.glob("*_INCR.sql.gz"))) == 2
    assert len(_notifications(runtime)) == 2
    # La misma hora otra vez (otra instancia que dispara después): no se repite.
    again = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=10, minute=45, second=50))
    assert again.resultado == "YA_EJECUTADA"
    # A la hora del backup diario lo cubre el diario.
    tocar_producto(fresh_db, "noche")
    daily = jobs.run_due(
        "backup_incremental", MIERCOLES.replace(hour=3, minute=0, second=5) + timedelta(days=1)
    )
    assert daily.estado == "OMITIDO" and "backup_diario" in daily.mensaje
    # Con un COMPLETO en curso: OMITIDO, lo dice, y no escribe nada.
    blocker = bloquear_pg_dump(fresh_db)
    service = BackupService(runtime)
    try:
        running = service.start_in_background("COMPLETO", "PRUEBA")
        busy = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=11, minute=0, second=5))
        assert busy.estado == "OMITIDO", busy.mensaje
        assert "un backup COMPLETO está en curso" in busy.mensaje
        assert len(list(directory.glob("*_INCR.sql.gz"))) == 2
    finally:
        blocker.rollback()
        blocker.close()
        assert service.wait_background(120)
    with runtime.session_factory() as session:
        assert service.get(session, running).estado == "COMPLETADO"
    assert [r.estado for r in _ledger(runtime)] == ["OK", "OK", "OMITIDO", "OK", "OMITIDO", "OMITIDO"]


def test_job_incremental_una_sola_vez_entre_dos_instancias(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    BackupService(runtime).run("COMPLETO", "PRUEBA")
    other = open_runtime(runtime.settings, fresh_db, migrate=False)
    try:
        for minute in (0, 15, 30):
            tocar_producto(fresh_db, f"cambio {minute}")
            moment = MIERCOLES.replace(hour=12, minute=minute, second=1)
            services = [JobsService(runtime, instancia="a:1"), JobsService(other, instancia="b:2")]
            barrier = threading.Barrier(2)
            results: list[str] = []

            def fire(
                jobs: JobsService,
                barrier: threading.Barrier = barrier,
                moment: datetime = moment,
                results: list[str] = results,
            ) -> None:
                barrier.wait()
                results.append(jobs.run_due("backup_incremental", moment).resultado)

            threads = [threading.Thread(target=fire, args=(s,)) for s in services]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert sorted(results).count("EJECUTADA") == 1, results
    finally:
        other.close()
    assert [r.estado for r in _ledger(runtime)] == ["OK"] * 3
    assert len(list(runtime.settings.backup_dir.glob("*_INCR.sql.gz"))) == 3


def test_incremental_fallido_avisa_en_rojo(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    service = BackupService(runtime, notifier=notify)
    service.run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "x")
    with fallo_sembrado(runtime.settings):
        corrida = JobsService(runtime).run_due(
            "backup_incremental", MIERCOLES.replace(hour=9, minute=0, second=1)
        )
    assert corrida.estado == "ERROR"
    assert _notifications(runtime)[-1] == ("❌ Error en Backup INCREMENTAL", "ROJO")
    # Un solo aviso: el del motor (el planificador no lo repite).
    assert [n.semaforo for n in _notifications(runtime)].count("ROJO") == 1


# ------------------------------------------------------------------ API


def test_puntos_de_restauracion_por_la_api(
    client: TestClient, admin_headers: dict[str, str], fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db)
    ids = []
    for ruta, tipo in [
        ("/ejecutar-completo", None),
        ("/ejecutar", "INCREMENTAL"),
        ("/ejecutar-diferencial", None),
        ("/ejecutar", "INCREMENTAL"),
    ]:
        tocar_producto(fresh_db, ruta)
        params = {"esperar": "true", **({"tipo": tipo} if tipo else {})}
        r = client.post(f"/api/v1/backup{ruta}", params=params, headers=admin_headers)
        assert r.status_code == 201, r.text
        ids.append((r.json()["id_backup"], r.json()["nombre_archivo"]))
    (f, f_name), (i1, i1_name), (d, d_name), (i2, i2_name) = ids
    r = client.get("/api/v1/backup/puntos-restauracion", headers=admin_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4 and [p["id_backup"] for p in body["items"]] == [i2, d, i1, f]
    chains = {p["id_backup"]: [a["nombre_archivo"] for a in p["archivos"]] for p in body["items"]}
    assert chains == {i2: [f_name, d_name, i2_name], d: [f_name, d_name], i1: [f_name, i1_name], f: [f_name]}
    top = body["items"][0]
    assert top["tipo"] == "INCREMENTAL" and top["tamanio_total_bytes"] == sum(
        (settings.backup_dir / n).stat().st_size for n in chains[i2]
    )
    page = client.get(
        "/api/v1/backup/puntos-restauracion", params={"offset": 1, "limit": 1}, headers=admin_headers
    ).json()
    assert page["total"] == 4 and [p["id_backup"] for p in page["items"]] == [d]
    # Sin el diferencial, los puntos que lo necesitan ya no son restaurables.
    (settings.backup_dir / d_name).unlink()
    r = client.get("/api/v1/backup/puntos-restauracion", headers=admin_headers)
    assert [p["id_backup"] for p in r.json()["items"]] == [i1, f]
    # Las estadísticas cuentan el incremental y no hay ✅ por él.
    est = client.get("/api/v1/backup/estadisticas", headers=admin_headers).json()
    assert est["backups_incrementales"] == 2 and est["ultimo_backup_incremental"] is not None
    r = client.get("/api/v1/notificaciones", params={"tipo": "BACKUP", "limit": 100}, headers=admin_headers)
    assert not [n for n in r.json()["items"] if "INCREMENTAL" in n["titulo"]]


def test_el_diario_espera_a_un_incremental_en_curso(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "x")
    # Un incremental que se queda leyendo `productos` mientras otra sesión la tiene bloqueada.
    blocker = connect(fresh_db, autocommit=False)
    blocker.execute("LOCK TABLE productos IN ACCESS EXCLUSIVE MODE")
    running = service.start_in_background("INCREMENTAL", "PRUEBA")
    assert service.running_type() == "INCREMENTAL"
    release = threading.Timer(3.0, blocker.rollback)
    release.start()
    try:
        corrida = JobsService(runtime).run_due("backup_diario", MIERCOLES.replace(hour=3, minute=0, second=1))
    finally:
        release.join()
        blocker.close()
        assert service.wait_background(120)
    assert corrida.estado == "OK" and corrida.mensaje.startswith("Backup DIFERENCIAL "), corrida.mensaje
    with runtime.session_factory() as session:
        assert service.get(session, running).estado == "COMPLETADO"


def test_incremental_con_descriptores_por_encima_de_1024(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    """La espera del socket de PostgreSQL no usa select(), que falla con descriptores >= 1024 (un
    servicio con muchas conexiones abiertas)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"el límite de descriptores ({hard}) no deja pasar de 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    fill(fresh_db)
    service = BackupService(runtime)
    service.run("COMPLETO", "PRUEBA")
    tocar_producto(fresh_db, "uno")
    runtime.engine.dispose()  # la conexión del cerrojo se abre después del relleno: descriptor alto
    relleno = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        row = service.run("INCREMENTAL", "PRUEBA")
        assert row.tipo == "INCREMENTAL" and row.estado == "COMPLETADO"
    finally:
        for fd in relleno:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
