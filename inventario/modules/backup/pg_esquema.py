"""Lo que el backup necesita saber del esquema, leído de pg_catalog (no del ORM).

Así el diferencial sirve para toda tabla que una migración futura añada, sin tocar este módulo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from graphlib import TopologicalSorter
from typing import Any

import psycopg
from psycopg import sql

AUDIT_COLUMN = "fecha_actualizacion"
CREATED_COLUMN = "fecha_creacion"
TOMBSTONES = "registro_eliminaciones"
# En qué backup está una base restaurada: cada archivo la escribe al final; no es un dato que se respalde.
MARKER_TABLE = "punto_restauracion"
# Catálogo de backups: tras restaurar se reescribe desde los manifiestos, no cuenta como "la base cambió".
CATALOG_TABLE = "historial_backup"
# Tablas que escribe la propia maquinaria de backups y jobs: sus cambios no bastan para que el job
# `backup_incremental` escriba un archivo (viajan en el siguiente que se haga).
MACHINERY_TABLES = frozenset({CATALOG_TABLE, "ejecuciones_job"})

FINGERPRINT_SQL = """
SELECT md5(coalesce(string_agg(
           c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
           || ':' || a.attnotnull::text, ',' ORDER BY c.relname, a.attname), ''))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
"""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    pk: tuple[str, ...]
    pk_types: tuple[str, ...]
    audited: bool

    @property
    def ident(self) -> sql.Composed:
        return sql.SQL("public.{}").format(sql.Identifier(self.name))


TABLES_SQL = """
SELECT c.relname,
       array(SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = '' ORDER BY a.attnum)::text[],
       array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[],
       array(SELECT format_type(a.atttypid, a.atttypmod)
             FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[],
       (SELECT count(*) = 2 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = c.oid AND a.attname IN (%s, %s) AND NOT a.attisdropped),
       array(SELECT p.relname FROM pg_catalog.pg_constraint k
             JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
             WHERE k.conrelid = c.oid AND k.contype = 'f')::text[]
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> %s
"""
TABLES_PARAMS = (AUDIT_COLUMN, CREATED_COLUMN, MARKER_TABLE)


def tables(conn: psycopg.Connection) -> list[Table]:
    """Tablas de `public` con datos que se respaldan, en orden de dependencias (padres antes que hijas)."""
    # Una sola consulta (las claves foráneas de cada tabla en una columna): es parte del costo fijo
    # de cada incremental.
    return parse_tables(conn.execute(TABLES_SQL, TABLES_PARAMS).fetchall())


def parse_tables(rows: list[tuple[Any, ...]]) -> list[Table]:
    by_name = {
        r[0]: Table(r[0], tuple(r[1]), tuple(r[2] or ()), tuple(r[3] or ()), bool(r[4] and r[2]))
        for r in rows
    }
    graph: dict[str, set[str]] = {name: set() for name in sorted(by_name)}
    for r in rows:
        for parent in r[5]:
            if parent != r[0] and parent in by_name:
                graph[r[0]].add(parent)
    return [by_name[name] for name in TopologicalSorter(graph).static_order()]


SEQUENCE_NAMES_SQL = (
    "SELECT sequencename FROM pg_catalog.pg_sequences WHERE schemaname = 'public' ORDER BY sequencename"
)


def sequences(conn: psycopg.Connection) -> list[tuple[str, int, bool]]:
    """(nombre, last_value, is_called) de cada secuencia de `public`, en dos idas y vueltas."""
    names = [r[0] for r in conn.execute(SEQUENCE_NAMES_SQL)]
    query = sequence_values_sql(names)
    return parse_sequences(names, conn.execute(query).fetchall() if query else [])


def sequence_values_sql(names: list[str]) -> sql.Composed | None:
    # `pg_sequences.last_value` es NULL si la secuencia no se usó aún: se lee cada una, en una consulta.
    if not names:
        return None
    return sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {n}::int, last_value, is_called FROM public.{s}").format(
            n=sql.Literal(i), s=sql.Identifier(name)
        )
        for i, name in enumerate(names)
    )


def parse_sequences(names: list[str], rows: list[tuple[Any, ...]]) -> list[tuple[str, int, bool]]:
    values = {int(r[0]): (int(r[1]), bool(r[2])) for r in rows}
    return [(name, *values[i]) for i, name in enumerate(names)]


def fingerprint(conn: psycopg.Connection) -> str:
    row = conn.execute(FINGERPRINT_SQL).fetchone()
    assert row is not None
    return str(row[0])


ALEMBIC_EXISTS_SQL = "to_regclass('public.alembic_version') IS NOT NULL"
ALEMBIC_SQL = "SELECT version_num FROM public.alembic_version"


def alembic_revision(conn: psycopg.Connection) -> str | None:
    exists = conn.execute("SELECT " + ALEMBIC_EXISTS_SQL).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(ALEMBIC_SQL).fetchone()
    return str(row[0]) if row else None


# Ver `changes_cutoff`.
CUTOFF_SQL = """
SELECT least(now(), min(xact_start)),
       count(*) FILTER (WHERE state IS NULL AND pid <> pg_backend_pid()) > 0
FROM pg_catalog.pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
"""


def changes_cutoff(conn: psycopg.Connection, hidden_margin: timedelta) -> tuple[datetime, bool]:
    """Desde cuándo debe leer un diferencial basado en una instantánea tomada justo después.

    Una transacción abierta durante la instantánea puede confirmar después filas selladas con su
    `now()`, anterior a la instantánea: el corte es el inicio de la transacción más antigua en curso.
    Si hay sesiones cuyo estado no podemos ver (sin pg_read_all_stats), se resta un margen.
    Debe leerse ANTES de tomar la instantánea (y no dentro de ella: una transacción que confirme
    entre la instantánea y la lectura de pg_stat_activity ya no aparecería).
    """
    return parse_cutoff(conn.execute(CUTOFF_SQL).fetchone(), hidden_margin)


def parse_cutoff(row: tuple[Any, ...] | None, hidden_margin: timedelta) -> tuple[datetime, bool]:
    assert row is not None
    cutoff, hidden = row[0], bool(row[1])
    if hidden:
        cutoff = cutoff - hidden_margin
    return cutoff, hidden
