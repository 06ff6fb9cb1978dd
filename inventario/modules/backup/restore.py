"""Verificar y restaurar cadenas de backups (completo + diferencial) con `psql`.

Todo sale del directorio de backups y sus manifiestos (`BackupRepo`): funciona aunque la base, y
con ella el catálogo, haya desaparecido. Antes de tocar nada se comprueba el MD5 y el gzip de cada
archivo. Aquí está la orquestación de `inventario backup verificar|restaurar`; la consola solo
pregunta y muestra.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from psycopg import sql
from sqlalchemy import select

from inventario.arranque import url_sin_clave
from inventario.database import make_engine, make_session_factory
from inventario.logging_setup import redact
from inventario.modules.backup.dump import EPILOGUE, PROLOGUE, QUIET
from inventario.modules.backup.exceptions import RestoreError
from inventario.modules.backup.files import iter_gzip
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.model import EstadoBackup, HistorialBackup
from inventario.modules.backup.repo import BackupRepo, Link
from inventario.modules.backup.service import sync_catalog
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime

Progress = Callable[[int], None]
log = logging.getLogger(__name__)

# Deja `public` vacío (tablas, vistas, secuencias, funciones), conservando el esquema y sus permisos,
# para que restaurar sobre una base con otra versión del esquema no deje restos.
CLEAR_PUBLIC_SQL = b"""DO $inventario$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format(CASE r.relkind WHEN 'v' THEN 'DROP VIEW IF EXISTS %s CASCADE'
                                  WHEN 'm' THEN 'DROP MATERIALIZED VIEW IF EXISTS %s CASCADE'
                                  WHEN 'f' THEN 'DROP FOREIGN TABLE IF EXISTS %s CASCADE'
                                  ELSE 'DROP TABLE IF EXISTS %s CASCADE' END, r.obj);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS obj FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'S'
  LOOP
    EXECUTE format('DROP SEQUENCE IF EXISTS %s CASCADE', r.obj);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS obj, p.prokind FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format(CASE r.prokind WHEN 'p' THEN 'DROP PROCEDURE IF EXISTS %s CASCADE'
                                  WHEN 'a' THEN 'DROP AGGREGATE IF EXISTS %s CASCADE'
                                  ELSE 'DROP FUNCTION IF EXISTS %s CASCADE' END, r.obj);
  END LOOP;
END
$inventario$;
"""


def _body(path: Path) -> Iterator[bytes]:
    """El SQL del archivo sin su BEGIN/COMMIT, para encadenar varios en una sola transacción."""
    chunks = iter_gzip(path)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(QUIET + PROLOGUE):
            break
    body = head.removeprefix(QUIET)  # los archivos anteriores no lo traen
    if not body.startswith(PROLOGUE):
        raise RestoreError(f"{path.name} no tiene el formato de Inventario (prólogo desconocido).")
    tail = b""
    for chunk in itertools.chain([body[len(PROLOGUE) :]], chunks):
        data = tail + chunk
        tail = data[-len(EPILOGUE) :]
        if data[: -len(EPILOGUE)]:
            yield data[: -len(EPILOGUE)]
    if tail != EPILOGUE:
        raise RestoreError(f"{path.name} está incompleto (falta el COMMIT final).")


def database_is_empty(target: DatabaseServer) -> bool:
    with target.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchone()
    return not row or row[0] == 0


def other_sessions(target: DatabaseServer) -> int:
    with target.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchone()
    return int(row[0]) if row else 0


def apply_chain(
    chain: list[Link], target: DatabaseServer, psql: str, progress: Progress | None = None
) -> None:
    """Restaura la cadena en `target` en UNA transacción de psql: todo o nada."""
    conninfo, env = target.libpq()
    command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", conninfo]
    with tempfile.TemporaryFile() as stderr, tempfile.TemporaryFile() as stdout:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, env=env)
        assert proc.stdin is not None
        broken = False
        try:
            proc.stdin.write(PROLOGUE + CLEAR_PUBLIC_SQL)
            for link in chain:
                sent = 0
                for data in _body(link.path):
                    proc.stdin.write(data)
                    sent += len(data)
                    if progress:
                        progress(len(data))
                if progress:  # prólogo y epílogo del archivo: así la barra llega al 100 %
                    progress(link.manifest.tamanio_sin_comprimir - sent)
                # Entre archivos: pg_dump dejó search_path vacío; el diferencial califica todo.
                proc.stdin.write(b"\n")
            proc.stdin.write(EPILOGUE)
        except BrokenPipeError:
            broken = True  # psql se detuvo en un error; lo leemos abajo
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                broken = True
        code = proc.wait()
        if code != 0 or broken:
            stderr.seek(0)
            message = redact(stderr.read().decode("utf-8", "replace").strip())
            raise RestoreError(
                f"psql falló (código {code}); la base quedó como estaba (transacción revertida): {message[-3000:]}"
            )


def table_counts(target: DatabaseServer, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    with target.connect() as conn:
        query = sql.SQL("SELECT ") + sql.SQL(", ").join(
            sql.SQL("(SELECT count(*) FROM public.{})").format(sql.Identifier(n)) for n in names
        )
        row = conn.execute(query).fetchone()
    assert row is not None
    return dict(zip(names, (int(v) for v in row), strict=True))


def compare_counts(manifest: Manifiesto, actual: dict[str, int]) -> list[str]:
    """Diferencias entre las filas por tabla del manifiesto y las restauradas (vacío = iguales)."""
    problems = []
    for table in manifest.tablas:
        if table.filas is not None and actual.get(table.nombre) != table.filas:
            problems.append(
                f"{table.nombre}: esperadas {table.filas}, restauradas {actual.get(table.nombre)}"
            )
    return problems


# ---------------------------------------------------------------------------- orquestación


def verified_chain(
    repo: BackupRepo, key: str, before_verify: Callable[[list[Link]], None] | None = None
) -> list[Link]:
    """La cadena de `key`, con el MD5 y el gzip de cada archivo comprobados (RestoreError si no).
    `before_verify` recibe la cadena antes de leerla entera (la consola dice qué verifica)."""
    return verify_chain(repo, repo.chain(key), before_verify)


@dataclass(frozen=True)
class CatalogEntry:
    """Lo que el catálogo (`historial_backup`) dice de un backup, para cotejarlo con el disco."""

    id_backup: int
    nombre_archivo: str
    estado: str | None
    eliminado: bool
    hash_md5: str | None
    tamanio_bytes: int | None

    @property
    def expected_on_disk(self) -> bool:
        return self.estado == EstadoBackup.COMPLETADO and not self.eliminado


def load_catalog(runtime: Runtime) -> dict[int, CatalogEntry]:
    with runtime.session_factory() as session:
        return {
            r.id_backup: CatalogEntry(
                r.id_backup, r.nombre_archivo, r.estado, bool(r.eliminado), r.hash_md5, r.tamanio_bytes
            )
            for r in session.scalars(select(HistorialBackup))
        }


def check_against_catalog(chain: list[Link], catalog: dict[int, CatalogEntry]) -> None:
    """Archivo y manifiesto ya coinciden entre sí (`verify`); aquí, con el catálogo. Quien reemplace
    un archivo y edite su manifiesto para que cuadre no engaña al catálogo, que es lo que mira la
    descarga (409)."""
    for link in chain:
        entry = catalog.get(link.manifest.id_backup)
        if entry is None:
            continue  # un backup de otra base (p. ej. traído de otra máquina): solo archivo y manifiesto
        if not entry.expected_on_disk:
            raise RestoreError(
                f"{link.path.name}: el catálogo dice que el backup {entry.id_backup} está "
                f"{'eliminado' if entry.eliminado else entry.estado}, no COMPLETADO."
            )
        if (entry.nombre_archivo, entry.hash_md5, entry.tamanio_bytes) != (
            link.path.name,
            link.manifest.hash_md5,
            link.manifest.tamanio_bytes,
        ):
            raise RestoreError(
                f"{link.path.name}: no es el archivo que registró el catálogo (catálogo: "
                f"{entry.nombre_archivo}, MD5 {entry.hash_md5}, {entry.tamanio_bytes} bytes; archivo y "
                f"manifiesto: MD5 {link.manifest.hash_md5}, {link.manifest.tamanio_bytes} bytes). "
                "Fue reemplazado o editado: no se usará."
            )


def verify_chain(
    repo: BackupRepo, chain: list[Link], before_verify: Callable[[list[Link]], None] | None = None
) -> list[Link]:
    if before_verify is not None:
        before_verify(chain)
    for link in chain:
        repo.verify(link)
    return chain


@dataclass
class TargetState:
    empty: bool
    other_sessions: int


def inspect_target(target: DatabaseServer) -> TargetState:
    return TargetState(database_is_empty(target), other_sessions(target))


@dataclass
class Restored:
    manifest: Manifiesto
    counts: dict[str, int]
    problems: list[str]  # filas distintas del manifiesto (vacío = iguales)
    synced: int  # registros del catálogo actualizados desde el directorio


def restore(
    runtime: Runtime,
    chain: list[Link],
    target: DatabaseServer,
    progress: Progress | None = None,
    *,
    ejecutado_por: str = "consola",
) -> Restored:
    """Aplica la cadena en `target` (una transacción), compara filas con el manifiesto y deja el
    catálogo `historial_backup` de `target` al día con el directorio de backups. Cada intento
    queda en app.log, en `restauraciones` y en un aviso de `target` (ver `registrar`)."""
    inicio, t0 = datetime.now(UTC), time.monotonic()
    anteriores = _restauraciones(target)  # el backup no las trae: se vuelven a poner
    try:
        apply_chain(chain, target, runtime.pg_tools().path("psql"), progress=progress)
    except RestoreError as exc:
        registrar(target, chain, inicio, time.monotonic() - t0, ejecutado_por, "ERROR", str(exc), None, [])
        raise
    # Una base recién cargada no tiene estadísticas hasta que autovacuum llegue: sin ellas el
    # planificador elige mal (los backups siguientes leen por `fecha_actualizacion`).
    with target.connect() as conn:
        conn.execute("ANALYZE")
    last = chain[-1].manifest
    counts = table_counts(target, [t.nombre for t in last.tablas])
    problems = compare_counts(last, counts)
    engine = make_engine(target.url)
    try:
        with make_session_factory(engine)() as session:
            synced = sync_catalog(session, BackupRepo(runtime.settings.backup_dir))
    finally:
        engine.dispose()
    resultado = "DIFERENCIAS" if problems else "OK"
    mensaje = (
        "; ".join(problems) if problems else f"estado de la base al {last.fecha_instantanea.isoformat()}"
    )
    registrar(
        target, chain, inicio, time.monotonic() - t0, ejecutado_por, resultado, mensaje,
        sum(counts.values()), anteriores,
    )  # fmt: skip
    return Restored(last, counts, problems, synced)


_COLUMNAS_RESTAURACION = (
    "id_restauracion, fecha_inicio, duracion_segundos, resultado, id_backup, tipo, archivos, destino, "
    "ejecutado_por, filas, mensaje"
)


def _restauraciones(target: DatabaseServer) -> list[tuple[object, ...]]:
    """Las filas de `restauraciones` de `target` antes de restaurar (ninguna si no existe)."""
    try:
        with target.connect() as conn:
            if conn.execute("SELECT to_regclass('public.restauraciones')").fetchone() == (None,):
                return []
            return list(conn.execute(f"SELECT {_COLUMNAS_RESTAURACION} FROM public.restauraciones"))
    except Exception:
        log.warning("No se pudieron leer las restauraciones anteriores de %s", target.database, exc_info=True)
        return []


def registrar(
    target: DatabaseServer,
    chain: list[Link],
    inicio: datetime,
    segundos: float,
    ejecutado_por: str,
    resultado: str,
    mensaje: str,
    filas: int | None,
    anteriores: list[tuple[object, ...]],
) -> None:
    """Deja constancia de una restauración: app.log (error.log si falló), una fila en
    `restauraciones` y un aviso en `notificaciones` de la base restaurada, ya de vuelta. Que esto
    falle no cambia el resultado de la restauración: solo se registra en el log."""
    last = chain[-1].manifest
    archivos = ", ".join(link.path.name for link in chain)
    destino = url_sin_clave(target.url)
    texto = (
        f"Restauración {resultado}: backup {last.tipo} {last.id_backup} ({archivos}) en {destino} "
        f"por {ejecutado_por}, {segundos:.1f} s: {mensaje}"
    )
    (log.error if resultado == "ERROR" else log.info)("%s", texto)
    semaforo = {"OK": "VERDE", "DIFERENCIAS": "AMARILLO", "ERROR": "ROJO"}[resultado]
    titulo = {
        "OK": f"♻️ Restaurado el backup {last.tipo} {last.id_backup}",
        "DIFERENCIAS": f"⚠️ Restaurado el backup {last.id_backup} con filas distintas del manifiesto",
        "ERROR": f"❌ Falló la restauración del backup {last.id_backup}",
    }[resultado]
    try:
        with target.connect() as conn, conn.transaction():
            if conn.execute("SELECT to_regclass('public.restauraciones')").fetchone() == (None,):
                log.warning("La base %s no tiene la tabla restauraciones (backup anterior a ella)", destino)
            else:
                if anteriores:
                    with conn.cursor() as cur:
                        cur.executemany(
                            f"INSERT INTO public.restauraciones ({_COLUMNAS_RESTAURACION}) VALUES "
                            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            anteriores,
                        )
                    conn.execute(
                        "SELECT setval(pg_get_serial_sequence('public.restauraciones', 'id_restauracion'), "
                        "(SELECT max(id_restauracion) FROM public.restauraciones))"
                    )
                conn.execute(
                    "INSERT INTO public.restauraciones (fecha_inicio, duracion_segundos, resultado, id_backup, "
                    "tipo, archivos, destino, ejecutado_por, filas, mensaje) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (inicio, round(segundos, 3), resultado, last.id_backup, last.tipo, archivos, destino,
                     ejecutado_por[:100], filas, mensaje),
                )  # fmt: skip
            conn.execute(
                "INSERT INTO public.notificaciones (tipo, titulo, mensaje, semaforo, referencia_tipo, "
                "referencia_id) VALUES ('RESTAURACION', %s, %s, %s, 'BACKUP', %s)",
                (titulo[:200], texto, semaforo, last.id_backup),
            )
    except Exception:
        log.exception("No se pudo registrar la restauración en %s", destino)


def restore_test(runtime: Runtime, chain: list[Link]) -> str:
    """Restaura la cadena en una base temporal y compara filas; devuelve el resumen o lanza."""
    scratch = f"inventario_verificacion_{os.getpid()}"
    with runtime.server.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    target = runtime.server.with_database(scratch)
    try:
        apply_chain(chain, target, runtime.pg_tools().path("psql"))
        last = chain[-1].manifest
        actual = table_counts(target, [t.nombre for t in last.tablas])
        problems = compare_counts(last, actual)
        if problems:
            raise RestoreError("restaurado, pero las filas no coinciden: " + "; ".join(problems))
        return f"restaurado en una base temporal: {sum(actual.values())} filas en {len(actual)} tablas, iguales al manifiesto"
    finally:
        with runtime.server.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


__all__ = ["Link", "RestoreError", "apply_chain", "restore", "restore_test", "verified_chain"]
