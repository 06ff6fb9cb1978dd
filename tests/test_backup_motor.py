"""Motor de backups contra PostgreSQL, pg_dump y psql reales."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from inventario.modules.backup.exceptions import BackupEnCurso, BackupError, DiscoLleno
from inventario.modules.backup.files import TEMP_SUFFIX
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.repo import MANIFEST_SUFFIX, NAME_RE
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import (
    bloquear_pg_dump,
    connect,
    drop_database,
    new_database,
    psql_file,
    snapshot,
)
from tests.backup_support import fill_inventario as fill


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_completo_crea_archivo_manifiesto_y_registro(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    row = BackupService(runtime).run("COMPLETO", "MANUAL")
    assert row.estado == "COMPLETADO" and row.tipo == "COMPLETO" and row.ejecutado_por == "MANUAL"
    assert NAME_RE.match(row.nombre_archivo) and row.nombre_archivo.endswith("_FULL.sql.gz")
    path = runtime.settings.backup_dir / row.nombre_archivo
    assert path.exists() and row.tamanio_bytes == path.stat().st_size
    assert row.tamanio_legible.endswith(("KB", "MB", "B"))
    manifest = json.loads((path.parent / (path.name + MANIFEST_SUFFIX)).read_text())
    assert manifest["hash_md5"] == row.hash_md5 and manifest["id_backup"] == row.id_backup
    counts = {t["nombre"]: t["filas"] for t in manifest["tablas"]}
    assert counts["productos"] == 20 and counts["lotes"] == 20 and counts["movimientos"] == 20
    assert row.registros_totales == sum(counts.values()) and row.tablas_respaldadas == len(counts)
    assert row.duracion_segundos is not None and row.duracion_segundos >= 0
    # El archivo es SQL plano en gzip, con la transacción que psql aplica entera, en silencio.
    with gzip.open(path, "rt") as fh:
        content = fh.read()
    assert content.startswith("\\set QUIET on\n\\o /dev/null\n\\set ON_ERROR_STOP on\nBEGIN;\n")
    assert content.endswith("COMMIT;\n")
    assert "CREATE TABLE public.productos" in content
    assert files_in(runtime.settings.backup_dir) == sorted(
        [row.nombre_archivo, row.nombre_archivo + MANIFEST_SUFFIX]
    )


def test_completo_restaura_en_base_vacia_y_sobre_la_existente(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    row = BackupService(runtime).run("COMPLETO", "MANUAL")
    expected = snapshot(fresh_db)
    path = runtime.settings.backup_dir / row.nombre_archivo
    target = new_database(pg_server, fresh_db.database + "_vacia")
    try:
        result = psql_file(runtime, target, path)
        assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr
        assert snapshot(target) == expected
    finally:
        drop_database(pg_server, target.database)
    # Sobre la misma base, ya con más datos: vuelve exactamente al estado del backup.
    fill(fresh_db, 5)
    assert snapshot(fresh_db) != expected
    result = psql_file(runtime, fresh_db, path)
    assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr
    assert snapshot(fresh_db) == expected


def test_completo_restaura_con_otro_usuario_de_base(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    row = BackupService(runtime).run("COMPLETO", "MANUAL")
    expected = snapshot(fresh_db)
    role = f"operador_{fresh_db.database}"[:60]
    try:
        with connect(pg_server.with_database("postgres")) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'otra-clave'")
            conn.execute(f'CREATE DATABASE "{role}" OWNER "{role}" TEMPLATE template0')
    except Exception as exc:
        pytest.skip(f"no se pueden crear roles en este servidor: {exc}")
    target = pg_server.with_database(role)
    target = DatabaseServer(
        target.url.set(username=role, password="otra-clave"), target.embedded, target.bin_dir_hint
    )
    try:
        result = psql_file(runtime, target, runtime.settings.backup_dir / row.nombre_archivo)
        assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr
        assert snapshot(target) == expected
        with connect(target) as conn:
            owners = {
                r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")
            }
        assert owners == {role}
    finally:
        drop_database(pg_server, role)
        with connect(pg_server.with_database("postgres")) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_diferencial_solo_lleva_lo_cambiado_y_cuenta_borrados(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db, 200)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "MANUAL")
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'cambiado' WHERE id_producto IN (1, 2, 3)")
        conn.execute("DELETE FROM movimientos WHERE id_movimiento IN (5, 6)")
    diff = service.run("DIFERENCIAL", "MANUAL")
    assert diff.tipo == "DIFERENCIAL" and diff.id_backup_base == full.id_backup
    manifest = json.loads((runtime.settings.backup_dir / (diff.nombre_archivo + MANIFEST_SUFFIX)).read_text())
    tables = {t["nombre"]: t for t in manifest["tablas"]}
    assert tables["productos"]["filas_escritas"] == 3
    assert tables["movimientos"]["filas_escritas"] == 0 and tables["movimientos"]["claves_eliminadas"] == 2
    assert tables["movimientos"]["filas"] == 198 and tables["productos"]["filas"] == 200
    assert tables["lotes"]["filas_escritas"] == 0
    assert diff.tamanio_bytes < full.tamanio_bytes / 3


def test_diferencial_fallido_al_aplicar_deja_la_base_como_estaba(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "MANUAL")
    with connect(fresh_db) as conn:
        conn.execute("UPDATE productos SET nombre = 'nuevo nombre' WHERE id_producto <= 10")
        conn.execute("DELETE FROM movimientos WHERE id_movimiento = 1")
    diff = service.run("DIFERENCIAL", "MANUAL")
    target = new_database(pg_server, fresh_db.database + "_t")
    directory = runtime.settings.backup_dir
    try:
        assert psql_file(runtime, target, directory / full.nombre_archivo).returncode == 0
        before = snapshot(target)
        # Un diferencial estropeado a mitad (un valor imposible en la última tabla) se rechaza entero.
        with gzip.open(directory / diff.nombre_archivo, "rt") as fh:
            lines = fh.read().split("\n")
        copy_at = max(i for i, line in enumerate(lines) if line.startswith('COPY public."productos"'))
        lines.insert(copy_at + 1, "no-es-un-numero\tX\tY\t\\N\tunidad\t0\tt\t2026-01-01\t2026-01-01")
        broken = directory.parent / "roto.sql.gz"
        with gzip.open(broken, "wt") as fh:
            fh.write("\n".join(lines))
        result = psql_file(runtime, target, broken)
        assert result.returncode != 0 and b"invalid input syntax" in result.stderr
        assert snapshot(target) == before
        # Sobre una base que no está en el estado del completo base, tampoco toca nada.
        empty = new_database(pg_server, fresh_db.database + "_e")
        try:
            result = psql_file(runtime, empty, directory / diff.nombre_archivo)
            assert result.returncode != 0 and "restaure primero ese completo" in result.stderr.decode()
            with connect(empty) as conn:
                assert (
                    conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
                    == 0
                )
        finally:
            drop_database(pg_server, empty.database)
    finally:
        drop_database(pg_server, target.database)


def test_diferencial_se_promueve_a_completo_cuando_debe(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    service = BackupService(runtime)
    first = service.run("DIFERENCIAL", "MANUAL")
    assert first.tipo == "COMPLETO" and "No hay un backup completo" in (first.nota or "")
    # Cambio de esquema (como una migración) desde el completo.
    with connect(fresh_db) as conn:
        conn.execute("ALTER TABLE productos ADD COLUMN marca text")
    second = service.run("DIFERENCIAL", "MANUAL")
    assert second.tipo == "COMPLETO" and "esquema cambió" in (second.nota or "")
    third = service.run("DIFERENCIAL", "MANUAL")
    assert third.tipo == "DIFERENCIAL" and third.id_backup_base == second.id_backup
    with connect(fresh_db) as conn:
        conn.execute("TRUNCATE notificaciones")
    fourth = service.run("DIFERENCIAL", "MANUAL")
    assert fourth.tipo == "COMPLETO" and "TRUNCATE" in (fourth.nota or "")
    # Si el archivo del último completo desapareció, tampoco hay base utilizable.
    (runtime.settings.backup_dir / fourth.nombre_archivo).unlink()
    fifth = service.run("DIFERENCIAL", "MANUAL")
    assert fifth.tipo == "COMPLETO" and "no está disponible" in (fifth.nota or "")


def test_auto_elige_completo_el_dia_configurado(runtime: Runtime) -> None:
    from datetime import datetime

    service = BackupService(runtime)
    tz = runtime.settings.tz
    monday = datetime(2026, 11, 30, 3, 0, tzinfo=tz)
    with runtime.session_factory() as session:
        assert service.decide(session, "AUTO", monday).tipo == "COMPLETO"
        # Martes sin completo previo: diferencial pedido, promovido a completo.
        tuesday = service.decide(session, "AUTO", monday + timedelta(days=1))
        assert tuesday.tipo == "COMPLETO" and tuesday.nota
    service.run("COMPLETO", "MANUAL")
    with runtime.session_factory() as session:
        assert service.decide(session, "AUTO", monday + timedelta(days=1)).tipo == "DIFERENCIAL"
        sunday = runtime.settings.model_copy(update={"BACKUP_FULL_DAY": 6})
        other = BackupService(
            Runtime(sunday, runtime.server, runtime.engine, runtime.session_factory, owns_server=False)
        )
        assert other.decide(session, "AUTO", monday - timedelta(days=1)).tipo == "COMPLETO"


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("la condición no se cumplió a tiempo")
        time.sleep(0.05)


def test_dos_backups_a_la_vez_el_segundo_falla_en_el_acto_y_no_bloquea_escrituras(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    blocker = bloquear_pg_dump(fresh_db)
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("row", service.run("COMPLETO", "UNO")))
    thread.start()
    try:
        _wait_for(lambda: any(p.name.endswith(TEMP_SUFFIX) for p in runtime.settings.backup_dir.glob("*")))
        started = time.monotonic()
        with pytest.raises(BackupEnCurso) as info:
            BackupService(runtime).run("COMPLETO", "DOS")
        assert time.monotonic() - started < 5
        assert info.value.status == 409 and "Backup en curso" in info.value.mensaje
        # Mientras el backup corre, la tienda sigue leyendo y escribiendo sin esperar.
        with connect(fresh_db) as conn:
            conn.execute("SET lock_timeout = '2s'")
            conn.execute("UPDATE lotes SET cantidad = cantidad + 1 WHERE id_lote = 1")
            conn.execute("INSERT INTO productos (codigo, nombre) VALUES ('DURANTE', 'Durante el backup')")
            assert conn.execute("SELECT count(*) FROM movimientos").fetchone()[0] == 20
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
    row = outcome["row"]
    assert isinstance(row, HistorialBackup) and row.estado == "COMPLETADO"
    with runtime.session_factory() as session:
        assert session.scalar(select(text("count(*)")).select_from(HistorialBackup)) == 1


def test_proceso_muerto_a_mitad_no_deja_archivo_final_y_se_recupera(
    runtime: Runtime, fresh_db: DatabaseServer, cli_env: dict[str, str]
) -> None:
    import sys

    fill(fresh_db)
    blocker = bloquear_pg_dump(fresh_db)
    exe = Path(sys.executable).with_name("inventario")
    proc = subprocess.Popen(
        [str(exe), "backup", "ejecutar", "--tipo", "COMPLETO"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    directory = runtime.settings.backup_dir
    try:
        _wait_for(lambda: any(p.name.endswith(TEMP_SUFFIX) for p in directory.glob("*")))
        proc.kill()
        proc.wait(10)
    finally:
        blocker.rollback()
        blocker.close()
    assert not any(NAME_RE.match(p.name) for p in directory.iterdir())
    with runtime.session_factory() as session:
        assert session.scalars(select(HistorialBackup.estado)).all() == ["EN_PROCESO"]
    service = BackupService(runtime)
    # El servidor libera el cerrojo del proceso muerto en cuanto nota la conexión cerrada.
    result: dict[str, int] = {}
    _wait_for(lambda: result.update(service.recover()) or result["interrumpidos"] == 1)
    assert files_in(directory) == []
    with runtime.session_factory() as session:
        row = session.scalars(select(HistorialBackup)).one()
    assert row.estado == "ERROR" and "Interrumpido" in (row.mensaje_error or "")
    # Y el siguiente backup funciona con normalidad.
    assert service.run("COMPLETO", "MANUAL").estado == "COMPLETADO"


def test_disco_lleno_no_deja_archivo_ni_registro_completado(
    runtime: Runtime, fresh_db: DatabaseServer, disco_pequeno: Path
) -> None:
    small = disco_pequeno
    # Datos poco comprimibles, bastante más grandes que el disco.
    fill(fresh_db, 3000, texto="")
    with connect(fresh_db) as conn:
        conn.execute(
            "UPDATE productos SET descripcion = (SELECT string_agg(md5(random()::text || g), '') FROM generate_series(1, 8) g WHERE productos.id_producto > 0)"
        )
    settings = runtime.settings.model_copy(update={"BACKUP_PATH": str(small)})
    service = BackupService(
        Runtime(settings, runtime.server, runtime.engine, runtime.session_factory, owns_server=False)
    )
    with pytest.raises(BackupError) as info:
        service.run("COMPLETO", "MANUAL")
    # En español, sin el OSError de Python; DiscoLleno es el 507 de la API.
    assert isinstance(info.value, DiscoLleno), info.value
    assert "Disco lleno" in info.value.mensaje and "OSError" not in info.value.mensaje, info.value.mensaje
    assert list(small.iterdir()) == []
    with runtime.session_factory() as session:
        row = session.scalars(select(HistorialBackup)).one()
    assert row.estado == "ERROR" and "Disco lleno" in (row.mensaje_error or "")


def test_retencion_respeta_cadenas_y_el_ultimo_completo(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fill(fresh_db, 5)
    service = BackupService(runtime)
    f1 = service.run("COMPLETO", "MANUAL")  # viejo, sin diferenciales vigentes → se borra
    d1 = service.run("DIFERENCIAL", "MANUAL")  # viejo → se borra
    f2 = service.run("COMPLETO", "MANUAL")  # viejo, pero un diferencial vigente depende de él
    d2 = service.run("DIFERENCIAL", "MANUAL")  # viejo → se borra
    d3 = service.run("DIFERENCIAL", "MANUAL")  # joven → se queda, y retiene a f2
    directory = runtime.settings.backup_dir
    (directory / "backup_20200101_000000_FULL.sql.gz.parcial").write_bytes(b"resto de un fallo")
    ages = {f1.id_backup: 200, d1.id_backup: 199, f2.id_backup: 120, d2.id_backup: 100, d3.id_backup: 89}
    with runtime.session_factory() as session:
        session.execute(text("SET LOCAL inventario.restaurando = 'on'"))
        for id_backup, days in ages.items():
            session.execute(
                text(
                    "UPDATE historial_backup SET fecha_creacion = now() - make_interval(days => :d) WHERE id_backup = :i"
                ),
                {"d": days, "i": id_backup},
            )
        session.commit()
    result = service.cleanup()
    assert sorted(r.id_backup for r in result.eliminados) == sorted(
        [f1.id_backup, d1.id_backup, d2.id_backup]
    )
    assert result.conservados_por_dependencia == [f2.id_backup]
    assert result.temporales_borrados == ["backup_20200101_000000_FULL.sql.gz.parcial"]
    assert result.bytes_liberados == f1.tamanio_bytes + d1.tamanio_bytes + d2.tamanio_bytes
    assert files_in(directory) == sorted(
        n for r in (f2, d3) for n in (r.nombre_archivo, r.nombre_archivo + MANIFEST_SUFFIX)
    )
    with runtime.session_factory() as session:
        rows = {r.id_backup: r for r in session.scalars(select(HistorialBackup))}
    for gone in (f1, d1, d2):
        assert rows[gone.id_backup].eliminado and rows[gone.id_backup].fecha_eliminacion is not None
    assert not rows[f2.id_backup].eliminado and not rows[d3.id_backup].eliminado
    # Cuando también d3 envejece (los backups se detuvieron), f2 y d3 siguen: el completo más
    # reciente y el punto más reciente se conservan siempre (antes se borraba d3, el último estado).
    with runtime.session_factory() as session:
        session.execute(text("SET LOCAL inventario.restaurando = 'on'"))
        session.execute(
            text(
                "UPDATE historial_backup SET fecha_creacion = now() - interval '95 days' WHERE id_backup = :i"
            ),
            {"i": d3.id_backup},
        )
        session.commit()
    second = service.cleanup()
    assert second.eliminados == []
    assert (directory / f2.nombre_archivo).exists() and (directory / d3.nombre_archivo).exists()
    assert service.restore_points()[0].link.manifest.id_backup == d3.id_backup


def _stat(pid: int) -> list[str]:
    # /proc/PID/stat tras el nombre del proceso (que va entre paréntesis): estado, ppid, ...
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _nice(pid: int) -> int:
    return int(_stat(pid)[16])


def _our_pg_dumps() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "pg_dump":
                if int(_stat(int(entry.name))[1]) == os.getpid():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_el_backup_cede_la_cpu_pg_dump_y_su_proceso_del_servidor_con_nice(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    """BACKUP_PRIORIDAD (19 por defecto): pg_dump, sus procesos de PostgreSQL (servidor local) y el
    conteo en paralelo corren con `nice`; con BACKUP_CPU_OCIOSA (pedido aquí), pg_dump y esos
    procesos además con SCHED_IDLE. El servicio conserva su prioridad y su política."""
    nice = runtime.settings.BACKUP_PRIORIDAD
    assert nice == 19 and not runtime.settings.BACKUP_CPU_OCIOSA
    runtime.settings.BACKUP_CPU_OCIOSA = True
    fill(fresh_db)
    service = BackupService(runtime)
    blocker = bloquear_pg_dump(fresh_db)  # pg_dump queda esperando: se pueden inspeccionar sus procesos
    thread = threading.Thread(target=lambda: service.run("COMPLETO", "NICE"))
    thread.start()
    try:

        def backends() -> list[int]:
            with connect(fresh_db) as conn:
                return [
                    r[0]
                    for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = 'inventario-backup'"
                    )
                ]

        def lowered(pid: int) -> bool:
            return _nice(pid) == nice and os.sched_getscheduler(pid) == os.SCHED_IDLE

        _wait_for(lambda: len(backends()) == 2 and all(lowered(pid) for pid in backends()))
        _wait_for(lambda: len(_our_pg_dumps()) == 1)
        assert lowered(_our_pg_dumps()[0])
        assert os.getpriority(os.PRIO_PROCESS, 0) == 0
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
    with runtime.session_factory() as session:
        assert session.scalars(select(HistorialBackup)).one().estado == "COMPLETADO"


def test_el_freno_ve_a_la_tienda_ocupada_y_no_a_los_backups(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    """BACKUP_FRENO_MB_S: "ocupada" = alguna sesión que no es del backup ejecutando una consulta."""
    from inventario.modules.backup.prioridad import APP_NAME, Freno

    def sleeping(app: str) -> threading.Thread:
        def run() -> None:
            with fresh_db.connect(application_name=app) as conn:
                conn.execute("SELECT pg_sleep(1.5)")

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    freno = Freno(fresh_db.connect, 1.0)
    try:
        time.sleep(0.5)
        assert not freno.busy
        backup = sleeping(APP_NAME)  # una consulta del propio backup no frena
        time.sleep(0.6)
        assert not freno.busy
        backup.join()
        shop = sleeping("tienda")
        _wait_for(lambda: freno.busy, timeout=5)
        shop.join()
        _wait_for(lambda: not freno.busy, timeout=5)
    finally:
        freno.close()


def test_completo_con_freno_restaura_igual(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    runtime.settings.BACKUP_FRENO_MB_S = 0.5
    row = BackupService(runtime).run("COMPLETO", "MANUAL")
    expected = snapshot(fresh_db)
    target = new_database(pg_server, fresh_db.database + "_freno")
    try:
        result = psql_file(runtime, target, runtime.settings.backup_dir / row.nombre_archivo)
        assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr
        assert snapshot(target) == expected
    finally:
        drop_database(pg_server, target.database)


def test_el_freno_limita_el_ritmo_solo_con_la_tienda_ocupada(fresh_db: DatabaseServer) -> None:
    """BACKUP_FRENO_MB_S: con la tienda libre, sin espera; ocupada, no más de `mb_per_s` desde el
    último momento libre (cota inferior del tiempo: son esperas, no velocidad de la máquina)."""
    from inventario.modules.backup.prioridad import Freno

    chunk, chunks, rate_mb = 256 * 1024, 32, 4.0  # 8 MB a 4 MB/s: ≥ 2 s ocupada
    freno = Freno(fresh_db.connect, rate_mb)
    shop = None
    try:
        started = time.monotonic()
        for _ in range(chunks):
            freno.throttle(chunk)
        assert time.monotonic() - started < 0.5  # libre: sin freno

        def busy_shop() -> None:
            with fresh_db.connect(application_name="tienda") as conn:
                conn.execute("SELECT pg_sleep(4)")

        shop = threading.Thread(target=busy_shop)
        shop.start()
        last_free = time.monotonic()
        while not freno.busy:
            freno.throttle(0)  # como el bombeo: cada lectura libre reinicia la cuenta
            last_free = time.monotonic()
            assert last_free - started < 30, "el freno no vio a la tienda ocupada"
            time.sleep(0.02)
        for _ in range(chunks):
            freno.throttle(chunk)
        assert freno.busy  # toda la medición con la tienda ocupada
        assert time.monotonic() - last_free >= 0.95 * chunk * chunks / (rate_mb * 1024 * 1024)
    finally:
        freno.close()
        if shop is not None:
            shop.join()


def test_backup_gzip_nivel_es_el_que_usa_el_servicio(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    """El nivel configurado llega al archivo: el mismo COMPLETO a nivel 1 ocupa más que a nivel 9, y
    la cabecera gzip lo dice (XFL: 4 = el más rápido, 2 = la máxima compresión)."""
    fill(fresh_db)
    service = BackupService(runtime)
    sizes, flags = {}, {}
    for level in (1, 9):
        runtime.settings.BACKUP_GZIP_NIVEL = level
        row = service.run("COMPLETO", "MANUAL")
        path = runtime.settings.backup_dir / row.nombre_archivo
        sizes[level] = path.stat().st_size
        flags[level] = path.read_bytes()[8]
    assert sizes[1] > 1.05 * sizes[9], sizes
    assert flags == {1: 4, 9: 2}, flags


def test_ejecutado_por_demasiado_largo_falla_y_no_se_guarda_recortado(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    """`ejecutado_por` es de auditoría: un valor de más de 100 caracteres (p. ej. `--usuario`) no
    se recorta en silencio, y no queda fila ni archivo."""
    fill(fresh_db)
    service = BackupService(runtime)
    with pytest.raises(BackupError):
        service.run("COMPLETO", "x" * 101)
    with runtime.session_factory() as session:
        guardados = session.scalars(select(HistorialBackup.ejecutado_por)).all()
    assert [e for e in guardados if e.startswith("x")] == []
    assert list(runtime.settings.backup_dir.glob("*.sql.gz")) == []
    assert service.run("COMPLETO", "x" * 100).ejecutado_por == "x" * 100


def test_backup_path_enlace_reapuntado_vale_desde_el_backup_siguiente(
    runtime: Runtime, fresh_db: DatabaseServer, tmp_path: Path
) -> None:
    """BACKUP_PATH como enlace simbólico que el administrador re-apunta (p. ej. a un disco nuevo):
    el servicio en marcha escribe el backup siguiente en el destino nuevo."""
    fill(fresh_db)
    viejo, nuevo, enlace = tmp_path / "disco_viejo", tmp_path / "disco_nuevo", tmp_path / "backups_enlace"
    viejo.mkdir(mode=0o700)
    nuevo.mkdir(mode=0o700)
    enlace.symlink_to(viejo)
    settings = runtime.settings.model_copy(update={"BACKUP_PATH": str(enlace)})
    service = BackupService(
        Runtime(settings, runtime.server, runtime.engine, runtime.session_factory, owns_server=False)
    )
    primero = service.run("COMPLETO", "PRUEBA")
    assert (viejo / primero.nombre_archivo).is_file()
    enlace.unlink()
    enlace.symlink_to(nuevo)
    segundo = service.run("COMPLETO", "PRUEBA")
    assert (nuevo / segundo.nombre_archivo).is_file() and not (viejo / segundo.nombre_archivo).exists()
    assert service.directory == nuevo


def test_nombre_de_backup_a_secas_es_el_de_backup_path_no_el_del_directorio_actual(
    runtime: Runtime, fresh_db: DatabaseServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    row = service.run("COMPLETO", "PRUEBA")
    otro = tmp_path / "directorio_actual"
    otro.mkdir()
    (otro / row.nombre_archivo).write_bytes(b"no es el backup")
    (otro / (row.nombre_archivo + MANIFEST_SUFFIX)).write_text("{}")
    monkeypatch.chdir(otro)
    link = service.repo.find(row.nombre_archivo)
    assert link.path == runtime.settings.backup_dir / row.nombre_archivo
