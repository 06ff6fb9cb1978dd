"""Verificar y restaurar cadenas de backups (completo + diferencial) con `psql`.

Todo sale del directorio de backups y sus manifiestos (`BackupRepo`): funciona aunque la base, y
con ella el catálogo, haya desaparecido. Antes de tocar nada se comprueba el MD5 y el gzip de cada
archivo. Aquí está la orquestación de `inventario backup verificar|restaurar`; la consola solo
pregunta y muestra.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from inventario.database import make_engine, make_session_factory
from inventario.logging_setup import redact
from inventario.modules.backup.dump import EPILOGUE, PROLOGUE, QUIET
from inventario.modules.backup.exceptions import RestoreError
from inventario.modules.backup.files import iter_gzip
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.repo import BackupRepo, Link
from inventario.modules.backup.service import sync_catalog
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime

Progress = Callable[[int], None]

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
    runtime: Runtime, chain: list[Link], target: DatabaseServer, progress: Progress | None = None
) -> Restored:
    """Aplica la cadena en `target` (una transacción), compara filas con el manifiesto y deja el
    catálogo `historial_backup` de `target` al día con el directorio de backups."""
    apply_chain(chain, target, runtime.pg_tools().path("psql"), progress=progress)
    last = chain[-1].manifest
    counts = table_counts(target, [t.nombre for t in last.tablas])
    problems = compare_counts(last, counts)
    engine = make_engine(target.url)
    try:
        with make_session_factory(engine)() as session:
            synced = sync_catalog(session, BackupRepo(runtime.settings.backup_dir))
    finally:
        engine.dispose()
    return Restored(last, counts, problems, synced)


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
