"""Propiedad central: completo + diferencial, restaurados con psql, reproducen la base exactamente."""

from __future__ import annotations

import itertools
import os
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from inventario.database import make_engine, make_session_factory
from inventario.modules.backup.repo import manifest_path, read_manifest
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import (
    apply_op,
    connect,
    drop_database,
    new_database,
    psql_file,
    seed_user,
    snapshot,
)
from tests.conftest import TEMPLATE, create_database

pytestmark = pytest.mark.lento

texto = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
k = st.integers(min_value=0, max_value=1000)
operacion = st.one_of(
    st.tuples(st.just("ins_producto"), texto, st.none() | texto, st.integers(0, 50)),
    st.tuples(st.just("upd_producto"), k, texto, st.booleans()),
    st.tuples(st.just("del_producto"), k),
    st.tuples(st.just("cambia_clave_producto"), k),
    st.tuples(st.just("ins_lote"), k, texto, st.none() | st.integers(-400, 1200), st.integers(0, 500)),
    st.tuples(st.just("upd_lote"), k, st.integers(-300, 300)),
    st.tuples(st.just("del_lote"), k),
    st.tuples(st.just("ins_mov"), k, st.integers(1, 100), st.none() | texto),
    st.tuples(st.just("del_mov"), k),
    st.tuples(st.just("ins_notif"), texto, texto, st.sampled_from(["VERDE", "AMARILLO", "ROJO"])),
    st.tuples(st.just("upd_notif"), k),
    st.tuples(st.just("del_notif"), k),
    st.tuples(st.sampled_from(["reinserta_producto", "reinserta_notif"]), k),
)
historia = st.lists(operacion, max_size=25)
_names = itertools.count()


@hsettings(
    max_examples=int(os.environ.get("INVENTARIO_EJEMPLOS", "12")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(antes=historia, abierta=historia, durante=historia, despues=historia)
def test_completo_mas_diferencial_restaura_exactamente(
    pg_server: DatabaseServer, runtime: Runtime, antes: list, abierta: list, durante: list, despues: list
) -> None:
    # Cada ejemplo en su propia base, con su propio directorio de backups.
    name = f"prop_{next(_names)}_{uuid.uuid4().hex[:6]}"
    create_database(pg_server, name, TEMPLATE)
    source = pg_server.with_database(name)
    target = new_database(pg_server, name + "_destino")
    engine = make_engine(source.url)
    rt = Runtime(
        runtime.settings.model_copy(update={"BACKUP_PATH": str(runtime.settings.backup_dir / name)}),
        source,
        engine,
        make_session_factory(engine),
        owns_server=False,
    )
    try:
        serial = [0]
        with connect(source) as conn:
            user = seed_user(conn)
            for op in antes:
                apply_op(conn, op, user, serial)
        service = BackupService(rt)
        # Una transacción abierta antes del completo que confirma después, con sellos más viejos.
        with connect(source, autocommit=False) as open_tx:
            # Abre la transacción ya (psycopg usa entonces savepoints dentro de ella) y siempre
            # escribe al menos una vez, además de las operaciones aleatorias.
            open_tx.execute("SELECT now()")
            apply_op(open_tx, ("ins_producto", "abierta", None, 1), user, serial)
            for op in abierta:
                apply_op(open_tx, op, user, serial)
            # Cambios confirmados mientras la transacción sigue abierta: quedan entre el corte y
            # la instantánea del completo (la ventana que el diferencial debe entender).
            with connect(source) as conn:
                # Una fila que la transacción abierta ya tocó quedaría esperando a su commit: se omite.
                conn.execute("SET lock_timeout = '200ms'")
                for op in durante:
                    apply_op(conn, op, user, serial)
            full = service.run("COMPLETO", "PRUEBA")
            open_tx.commit()
        with connect(source) as conn:
            for op in despues:
                apply_op(conn, op, user, serial)
        diff = service.run("DIFERENCIAL", "PRUEBA")
        assert diff.tipo == "DIFERENCIAL" and diff.id_backup_base == full.id_backup
        expected = snapshot(source)
        # Las filas por tabla que el diferencial dedujo sin recorrer las tablas son las reales.
        manifest = read_manifest(manifest_path(rt.settings.backup_dir / diff.nombre_archivo))
        with connect(source) as conn:
            for table in manifest.tablas:
                real = conn.execute(f'SELECT count(*) FROM public."{table.nombre}"').fetchone()[0]
                assert table.filas == real, (table.nombre, table.filas, real)

        backup_dir = rt.settings.backup_dir
        for path in (backup_dir / full.nombre_archivo, backup_dir / diff.nombre_archivo):
            result = psql_file(rt, target, path)
            assert result.returncode == 0, result.stderr.decode()
            assert b"ERROR" not in result.stderr, result.stderr.decode()
        assert snapshot(target) == expected

        # Aplicar el mismo diferencial otra vez no cambia nada (idempotente).
        result = psql_file(rt, target, backup_dir / diff.nombre_archivo)
        assert result.returncode == 0, result.stderr.decode()
        assert snapshot(target) == expected
    finally:
        engine.dispose()
        drop_database(pg_server, name)
        drop_database(pg_server, name + "_destino")


# Cadenas: COMPLETO y luego diferenciales e incrementales al azar, cada uno con una transacción
# abierta que lo cruza; se restaura cada punto con psql, archivo por archivo, en una base nueva.
tramo = st.lists(operacion, max_size=8)
paso = st.tuples(st.sampled_from(["DIFERENCIAL", "INCREMENTAL", "INCREMENTAL"]), tramo, tramo, tramo)


def _cadena(kinds: list[str], point: int) -> list[int]:
    """La regla de restauración: el completo, el último diferencial hasta `point` y los incrementales después."""
    diffs = [i for i in range(1, point + 1) if kinds[i] == "DIFERENCIAL"]
    start = diffs[-1] if diffs else 0
    return [0, *([start] if start else []), *(i for i in range(start + 1, point + 1))]


@hsettings(
    max_examples=int(os.environ.get("INVENTARIO_EJEMPLOS_CADENA", "4")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(antes=historia, primero=st.tuples(tramo, tramo), pasos=st.lists(paso, min_size=2, max_size=4))
def test_cadena_con_incrementales_restaura_cada_punto_exactamente(
    pg_server: DatabaseServer, runtime: Runtime, antes: list, primero: tuple, pasos: list
) -> None:
    name = f"cadena_{next(_names)}_{uuid.uuid4().hex[:6]}"
    create_database(pg_server, name, TEMPLATE)
    source = pg_server.with_database(name)
    engine = make_engine(source.url)
    rt = Runtime(
        runtime.settings.model_copy(update={"BACKUP_PATH": str(runtime.settings.backup_dir / name)}),
        source,
        engine,
        make_session_factory(engine),
        owns_server=False,
    )
    targets: list[str] = []
    try:
        serial = [0]
        with connect(source) as conn:
            user = seed_user(conn)
            for op in antes:
                apply_op(conn, op, user, serial)
        service = BackupService(rt)
        rows = []
        expected = []
        steps = [("COMPLETO", primero[0], primero[1], []), *pasos]
        for kind, abierta, durante, despues in steps:
            with connect(source, autocommit=False) as open_tx:
                open_tx.execute("SELECT now()")
                apply_op(open_tx, ("ins_producto", "abierta", None, 1), user, serial)
                for op in abierta:
                    apply_op(open_tx, op, user, serial)
                with connect(source) as conn:
                    conn.execute("SET lock_timeout = '200ms'")
                    for op in durante:
                        apply_op(conn, op, user, serial)
                state = snapshot(source)  # lo que ve la instantánea: sin la transacción abierta
                row = service.run(kind, "PRUEBA")
                open_tx.commit()
            assert row.tipo == kind, row.nota
            rows.append(row)
            expected.append(state)
            # Las filas por tabla deducidas sin recorrer las tablas son las de la instantánea.
            manifest = read_manifest(manifest_path(rt.settings.backup_dir / row.nombre_archivo))
            for table in manifest.tablas:
                if table.nombre in state:
                    assert table.filas == len(state[table.nombre]), (kind, table.nombre)
            with connect(source) as conn:
                for op in despues:
                    apply_op(conn, op, user, serial)

        kinds = [r.tipo for r in rows]
        backup_dir = rt.settings.backup_dir
        for point in range(len(rows)):
            chain = _cadena(kinds, point)
            # La cadena que dicen los manifiestos (cada uno nombra su base) es la de la regla.
            links: list[str] = []
            current: str | None = rows[point].nombre_archivo
            while current:
                links.insert(0, current)
                current = read_manifest(manifest_path(backup_dir / current)).nombre_archivo_base
            assert links == [rows[i].nombre_archivo for i in chain]
            target_name = f"{name}_p{point}"
            targets.append(target_name)
            target = new_database(pg_server, target_name)
            for i in chain:
                result = psql_file(rt, target, backup_dir / rows[i].nombre_archivo)
                assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr.decode()
            assert snapshot(target) == expected[point], (kinds, point)
            # Aplicar otra vez el último archivo no cambia nada (idempotente).
            result = psql_file(rt, target, backup_dir / rows[chain[-1]].nombre_archivo)
            assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr.decode()
            assert snapshot(target) == expected[point]
            drop_database(pg_server, target_name)
    finally:
        engine.dispose()
        drop_database(pg_server, name)
        for target_name in targets:
            drop_database(pg_server, target_name)
