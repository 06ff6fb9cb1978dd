"""Verificar y restaurar cadenas de backups (completo + diferencial) con `psql`.

Todo sale del directorio de backups y sus manifiestos: funciona aunque la base, y con ella el
catálogo, haya desaparecido. Antes de tocar nada se comprueba el MD5 y el gzip de cada archivo.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from inventario.logging_setup import redact
from inventario.modules.backup.dump import EPILOGUE, PROLOGUE, QUIET
from inventario.modules.backup.files import NAME_RE, check_gzip, iter_gzip, manifest_path, read_manifest
from inventario.modules.backup.schemas import Manifiesto
from inventario.postgres import DatabaseServer

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


class RestoreError(RuntimeError):
    """Algo impide restaurar; el mensaje dice qué y cómo seguir."""


@dataclass(frozen=True)
class Link:
    path: Path
    manifest: Manifiesto


def find_manifest(directory: Path, key: str) -> Link:
    """Un backup por id (`7`) o por archivo (nombre o ruta)."""
    if key.isdigit():
        for candidate in sorted(directory.glob("backup_*.sql.gz")):
            mpath = manifest_path(candidate)
            if mpath.exists():
                try:
                    manifest = read_manifest(mpath)
                except (ValueError, OSError):
                    continue
                if manifest.id_backup == int(key):
                    return Link(candidate, manifest)
        raise RestoreError(f"No hay en {directory} ningún backup con id {key} (ni su manifiesto).")
    path = Path(key)
    if not path.is_absolute() and not path.exists():
        path = directory / key
    if not path.exists():
        raise RestoreError(f"No existe el archivo {path}.")
    mpath = manifest_path(path)
    if not mpath.exists():
        raise RestoreError(
            f"Falta el manifiesto {mpath.name} junto a {path.name}: sin él no se puede saber qué contiene. "
            "Para restaurar a mano: gunzip -c ARCHIVO | psql -d BASE"
        )
    try:
        return Link(path, read_manifest(mpath))
    except (ValueError, OSError) as exc:
        raise RestoreError(f"El manifiesto {mpath.name} está dañado: {exc}") from None


def resolve_chain(directory: Path, key: str) -> list[Link]:
    """[completo] o [completo, diferencial], comprobando que el diferencial es de ese completo."""
    link = find_manifest(directory, key)
    if link.manifest.tipo == "COMPLETO":
        return [link]
    base_name = link.manifest.nombre_archivo_base
    if not base_name or not NAME_RE.match(base_name):
        raise RestoreError(f"El manifiesto de {link.path.name} no nombra su completo base.")
    for folder in dict.fromkeys((link.path.parent, directory)):
        candidate = folder / base_name
        if candidate.exists() and manifest_path(candidate).exists():
            base = Link(candidate, read_manifest(manifest_path(candidate)))
            if (
                base.manifest.id_backup != link.manifest.id_backup_base
                or base.manifest.hash_md5 != link.manifest.hash_md5_base
            ):
                raise RestoreError(
                    f"El completo {base_name} no es el que usó {link.path.name} (id o MD5 distintos)."
                )
            return [base, link]
    raise RestoreError(
        f"Falta el backup completo base {base_name} de {link.path.name}: un diferencial solo se "
        "aplica sobre su completo."
    )


def verify_link(link: Link) -> None:
    """MD5 y gzip íntegros, leyendo el archivo entero. Lanza RestoreError si algo no cuadra."""
    if not link.path.exists():
        raise RestoreError(f"Falta el archivo {link.path}.")
    try:
        md5, size = check_gzip(link.path)
    except (zlib.error, OSError, EOFError) as exc:
        raise RestoreError(f"{link.path.name}: el gzip está dañado ({exc}).") from None
    if md5 != link.manifest.hash_md5:
        raise RestoreError(
            f"{link.path.name}: el MD5 no coincide (esperado {link.manifest.hash_md5}, calculado {md5}). "
            "El archivo está dañado o fue modificado; no se usará."
        )
    if size != link.manifest.tamanio_sin_comprimir:
        raise RestoreError(f"{link.path.name}: el tamaño descomprimido no coincide con el manifiesto.")


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
    with connect(target) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchone()
    return not row or row[0] == 0


def other_sessions(target: DatabaseServer) -> int:
    with connect(target) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchone()
    return int(row[0]) if row else 0


def connect(target: DatabaseServer) -> psycopg.Connection:
    conninfo, env = target.libpq()
    return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True)


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
    with connect(target) as conn:
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
