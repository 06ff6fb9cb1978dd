"""Escritura de los tres tipos de archivo.

COMPLETO: la salida de `pg_dump` (SQL plano, con `--clean --if-exists --no-owner`) tomada de una
instantánea exportada, envuelta en una transacción que `psql` aplica entera o nada.

DIFERENCIAL e INCREMENTAL: desde la misma clase de instantánea, por tabla, las claves cambiadas o
borradas desde el corte de su predecesor (columna `fecha_actualizacion` y `registro_eliminaciones`)
y las filas actuales de esas claves. El diferencial lee desde el corte del completo; el incremental,
desde el del backup anterior de la cadena (`fecha_corte_siguiente` de su manifiesto). Al aplicarlo:
se comprueba que la base está en el estado del predecesor, se borran esas claves y se copian las
filas, con las claves foráneas diferidas; el resultado es el estado de la instantánea, y aplicarlo
dos veces da lo mismo.

Cada archivo termina anotando en `punto_restauracion` en qué backup queda la base.
"""

from __future__ import annotations

import functools
import json
import queue
import select
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import psycopg
from psycopg import pq, sql
from psycopg.types.json import Jsonb

from inventario.auditoria import RESTORE_GUC
from inventario.logging_setup import redact
from inventario.modules.backup import prioridad
from inventario.modules.backup.files import CHUNK, AtomicGzipWriter
from inventario.modules.backup.manifest import Manifiesto, TablaManifiesto
from inventario.modules.backup.pg_esquema import (
    CATALOG_TABLE,
    FINGERPRINT_SQL,
    MARKER_TABLE,
    TOMBSTONES,
    Table,
    sequences,
    tables,
)

# Prólogo y epílogo fijos: la CLI los reconoce para encadenar completo y diferencial en UNA
# transacción; con `psql < archivo` cada archivo es su propia transacción.
PROLOGUE = b"\\set ON_ERROR_STOP on\nBEGIN;\n"
# Antes del prólogo: `psql < archivo` en silencio (sin etiquetas de órdenes ni resultados de
# setval); los errores siguen saliendo por stderr. Los archivos anteriores no lo traen.
QUIET = b"\\set QUIET on\n\\o /dev/null\n"
EPILOGUE = b"COMMIT;\n"


class DumpError(RuntimeError):
    pass


@dataclass
class DumpResult:
    tables: list[TablaManifiesto] = field(default_factory=list)


class BackgroundCompressor:
    """Comprime en otro hilo lo que se le escribe, en orden, para que leer y comprimir se solapen.

    zlib-ng (como zlib) suelta el GIL al comprimir: lectura y compresión corren en paralelo, como
    `pg_dump | gzip` (comprobado: un hilo Python puro avanza al 97 % mientras otro comprime).
    Un fallo al escribir (disco lleno) se relanza en el siguiente `write` o en `close`.
    """

    def __init__(self, writer: AtomicGzipWriter, niceness: int = 0) -> None:
        self.writer = writer
        self.niceness = niceness
        # Bloques de hasta 1 MB (CHUNK): a lo sumo ~8 MB esperando a comprimirse.
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._failure: list[BaseException] = []
        self._worker = threading.Thread(target=self._run, name="backup-gzip", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        prioridad.lower_this_thread(self.niceness)
        try:
            while (chunk := self._chunks.get()) is not None:
                self.writer.write(chunk)
        except BaseException as exc:
            self._failure.append(exc)
            while self._chunks.get() is not None:  # vaciar para no bloquear a quien escribe
                pass

    def write(self, data: bytes | bytearray) -> None:
        if self._failure:
            raise self._failure[0]
        self._chunks.put(bytes(data))

    def close(self) -> None:
        """Espera a que todo esté comprimido; relanza el fallo del hilo, si lo hubo."""
        if self._worker.is_alive():
            self._chunks.put(None)
            self._worker.join()
        if self._failure:
            raise self._failure[0]


def pump(
    source: IO[bytes], writer: AtomicGzipWriter, niceness: int = 0, freno: prioridad.Freno | None = None
) -> None:
    """Lee de `source` y comprime en otro hilo, para que pg_dump no espere mientras se comprime."""
    compressor = BackgroundCompressor(writer, niceness)
    try:
        while chunk := source.read(CHUNK):
            compressor.write(chunk)
            if freno is not None:
                freno.throttle(len(chunk))
    finally:
        compressor.close()


def _count_rows(
    connect: Callable[..., psycopg.Connection],
    snapshot: str,
    names: list[str],
    out: dict,
    niceness: int,
    idle: bool,
) -> None:
    """Filas por tabla en la misma instantánea que pg_dump, en paralelo a él."""
    try:
        with connect(application_name=prioridad.APP_NAME) as conn:
            prioridad.lower_backends(conn, niceness, idle=idle)  # el suyo y el de pg_dump
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            if names:
                query = sql.SQL("SELECT ") + sql.SQL(", ").join(
                    sql.SQL("(SELECT count(*) FROM public.{})").format(sql.Identifier(n)) for n in names
                )
                row = conn.execute(query).fetchone()
                assert row is not None
                out.update(zip(names, (int(v) for v in row), strict=True))
            conn.execute("COMMIT")
    except Exception as exc:
        out["__error__"] = exc


def write_full(
    writer: AtomicGzipWriter,
    *,
    pg_dump: str,
    conninfo: str,
    env: dict[str, str],
    connect: Callable[..., psycopg.Connection],
    snapshot: str,
    table_names: list[str],
    comment: str,
    marker: bytes = b"",
    niceness: int = 0,
    idle: bool = False,
    freno_mb_s: float = 0,
) -> DumpResult:
    """`marker`: las sentencias que anotan el punto de restauración, tras los datos de pg_dump.
    `niceness`, `idle` y `freno_mb_s` (0 = sin freno): ver `prioridad`."""
    counts: dict[str, object] = {}
    counter = threading.Thread(
        target=_count_rows,
        args=(connect, snapshot, table_names, counts, niceness, idle),
        daemon=True,
    )
    counter.start()
    writer.write(QUIET + PROLOGUE)
    writer.write(comment.encode() + b"\n")
    command = [
        pg_dump,
        "--format=plain",
        "--no-owner",
        "--no-privileges",
        "--clean",
        "--if-exists",
        "--encoding=UTF8",
        f"--snapshot={snapshot}",
        f"--exclude-table-data=public.{MARKER_TABLE}",
        "--lock-wait-timeout=60s",
        "--dbname",
        conninfo,
    ]
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**env, "PGAPPNAME": prioridad.APP_NAME},
            # En su propia sesión: un Ctrl+C en la terminal del servicio (SIGINT a todo el grupo)
            # no mata el pg_dump de un backup en curso; el servicio lo espera y después sale.
            start_new_session=True,
            # Con búfer: `read(CHUNK)` junta bloques de 1 MB. Sin él, cada lectura devolvía lo que
            # pg_dump acababa de escribir (~10 KB): ~20 000 pasos por hilo y cola en vez de ~200, y
            # 0.2 s más de CPU por COMPLETO a 2 M filas (docs/benchmarks.md, ronda 2).
        )
        prioridad.lower(proc.pid, niceness, idle)
        assert proc.stdout is not None
        freno = prioridad.Freno(connect, freno_mb_s) if freno_mb_s > 0 else None
        try:
            pump(proc.stdout, writer, niceness, freno)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if freno is not None:
                freno.close()
        code = proc.wait()
        if code != 0:
            stderr.seek(0)
            message = redact(stderr.read().decode("utf-8", "replace").strip())
            raise DumpError(f"pg_dump terminó con código {code}: {message[-2000:]}")
    writer.write(b"\n" + marker)
    writer.write(EPILOGUE)
    counter.join()
    if "__error__" in counts:
        raise DumpError(f"No se pudieron contar las filas: {counts['__error__']}")
    return DumpResult(
        [TablaManifiesto(nombre=n, filas=int(counts[n]), filas_escritas=int(counts[n])) for n in table_names]  # type: ignore[call-overload]  # counts: nombre → int, salvo "__error__"
    )


def _wait(pgconn: pq.abc.PGconn, write: bool = False) -> None:
    """Espera a que el socket se pueda leer (o escribir) soltando el GIL: las llamadas de libpq que
    bloquean no lo sueltan, y el hilo de compresión se quedaría parado mientras el servidor trabaja."""
    # poll y no select: select falla con descriptores >= 1024 (un proceso con muchos sockets).
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLOUT if write else select.POLLIN)
    poller.poll()


def _result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    while pgconn.is_busy():
        _wait(pgconn)
        pgconn.consume_input()
    return pgconn.get_result()


def copy_many(
    conn: psycopg.Connection,
    writer: BackgroundCompressor,
    copies: list[tuple[bytes, bytes]],
    tail: bytes = b"",
) -> tuple[list[int], list[tuple[bytes | None, ...]]]:
    """Varios `COPY (consulta) TO STDOUT` y, detrás, `tail` (p. ej. una consulta y un COMMIT), en UN
    mensaje de consulta simple: una sola ida y vuelta en vez de una por tabla. `copies`: (lo que
    se escribe antes de los datos, la consulta); cada bloque de datos termina con `\\.`. Devuelve
    las filas de cada COPY y las filas (en texto) de las consultas de `tail`.

    Va por libpq (`conn.pgconn`) porque psycopg no admite varios COPY en una consulta; en
    transacción, como el resto de la instantánea. Un error del servidor se lanza como en psycopg
    después de leer todo lo que quedaba (la conexión queda lista para un ROLLBACK)."""
    pgconn = conn.pgconn
    query = b";\n".join(b"COPY (" + select + b") TO STDOUT" for _, select in copies)
    if tail:
        query += b";\n" + tail
    pgconn.send_query(query)
    while pgconn.flush():
        _wait(pgconn, write=True)
    counts: list[int] = []
    rows: list[tuple[bytes | None, ...]] = []
    error: psycopg.Error | None = None
    while (res := _result(pgconn)) is not None:
        status = res.status
        if status == pq.ExecStatus.COPY_OUT:
            writer.write(copies[len(counts)][0])
            lines = 0
            buffer = bytearray()
            while True:
                size, data = pgconn.get_copy_data(1)
                if size == 0:
                    _wait(pgconn)
                    pgconn.consume_input()
                    continue
                if size < 0:
                    break  # fin (o error: lo trae el resultado siguiente)
                buffer += data
                if len(buffer) >= CHUNK:
                    lines += buffer.count(b"\n")
                    writer.write(buffer)
                    buffer = bytearray()
            lines += buffer.count(b"\n")
            buffer += b"\\.\n"
            writer.write(buffer)
            counts.append(lines)
        elif status == pq.ExecStatus.TUPLES_OK:
            rows.extend(tuple(res.get_value(r, c) for c in range(res.nfields)) for r in range(res.ntuples))
        elif status != pq.ExecStatus.COMMAND_OK and error is None:
            error = psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
    if error is not None:
        raise error
    return counts, rows


INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
# Alias de la marca "la clave ya estaba en el predecesor" (no choca con una columna de la clave).
_OLD = sql.Identifier("_inventario_vieja")


def _cols(names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in names)


@dataclass(frozen=True)
class Changes:
    """Las claves de una tabla auditada cambiadas o borradas desde el corte (K), en su instantánea."""

    count: int
    # Por columna de la clave primaria, el texto de un array de PostgreSQL (`array_agg(...)::text`),
    # todas en el mismo orden: así viajan al archivo sin tabla temporal.
    arrays: tuple[str, ...]
    # |K ∩ F_viejas|: claves de K que ya estaban en el predecesor y no en sus `claves_recientes`
    # (ver `_filas`).
    old_touched: int


def _single_int_key(table: Table) -> bool:
    return len(table.pk) == 1 and table.pk_types[0] in INTEGER_TYPES


def changed_keys_query(
    ordered: list[Table], cutoff: datetime, base: Manifiesto
) -> tuple[bytes, dict[str, Any]] | None:
    """La consulta (y sus parámetros) de K por tabla auditada, todas en UNA consulta: las filas escritas desde el corte (índice de
    `fecha_actualizacion`) y las claves de `registro_eliminaciones` desde el corte.

    En la misma pasada se cuenta |K ∩ F_viejas| para deducir las filas de la tabla sin recorrerla:
    una clave de K estaba en el predecesor (F_viejas = F − R) si su fila actual nació antes del
    corte, o si se borró desde el corte una fila nacida antes (incluye la clave vieja de un cambio
    de clave primaria; las borradas antes de la instantánea del predecesor están en
    `eliminaciones_recientes`), y no está entre sus `claves_recientes` (R).
    """
    audited = tuple(t for t in ordered if t.audited)
    if not audited:
        return None
    params: dict[str, Any] = {"corte": cutoff, "previas": base.eliminaciones_recientes}
    for i, table in enumerate(audited):
        entry = base.tabla(table.name)
        recent = (entry.claves_recientes if entry else None) or []
        if _single_int_key(table):
            params[f"r{i}"] = [int(k[table.pk[0]]) for k in recent]
        else:
            params[f"r{i}"] = [Jsonb(k) for k in recent]
    return _changed_keys_text(audited), params


@functools.lru_cache(maxsize=16)
def _changed_keys_text(audited: tuple[Table, ...]) -> bytes:
    """El texto de `changed_keys_query` para un esquema: componerlo costaba milisegundos de CPU
    en cada incremental y solo cambia con el esquema (los datos van en parámetros)."""
    parts = []
    for i, table in enumerate(audited):
        cols = _cols(table.pk)
        if _single_int_key(table):
            not_recent = sql.SQL("g.{} NOT IN (SELECT unnest(%(r{})s::bigint[]))").format(
                sql.Identifier(table.pk[0]), sql.SQL(str(i))
            )
        else:
            not_recent = sql.SQL("{} NOT IN (SELECT unnest(%(r{})s::jsonb[]))").format(
                _key_json(table, "g"), sql.SQL(str(i))
            )
        parts.append(
            sql.SQL(
                "SELECT {i}::int, count(*), ARRAY[{arrays}], count(*) FILTER (WHERE g.{old} AND {not_recent}) "
                "FROM (SELECT {cols}, bool_or(u.{old}) AS {old} FROM ("
                "SELECT {cols}, fecha_creacion < %(corte)s FROM {t} WHERE fecha_actualizacion >= %(corte)s "
                "UNION ALL "
                "SELECT {casts}, (fecha_creacion_fila < %(corte)s "
                "AND id_eliminacion NOT IN (SELECT unnest(%(previas)s::bigint[]))) "
                "FROM public.{tomb} WHERE tabla = {name} AND clave IS NOT NULL AND fecha_actualizacion >= %(corte)s"
                ") AS u({cols}, {old}) GROUP BY {cols}) AS g"
            ).format(
                i=sql.Literal(i),
                arrays=sql.SQL(", ").join(
                    sql.SQL("array_agg(g.{})::text").format(sql.Identifier(c)) for c in table.pk
                ),
                old=_OLD,
                not_recent=not_recent,
                cols=cols,
                t=table.ident,
                casts=sql.SQL(", ").join(
                    sql.SQL("(clave ->> {})::{}").format(sql.Literal(c), sql.SQL(typ))
                    for c, typ in zip(table.pk, table.pk_types, strict=True)
                ),
                tomb=sql.Identifier(TOMBSTONES),
                name=sql.Literal(table.name),
            )
        )
    return sql.SQL(" UNION ALL ").join(parts).as_bytes(None)


def parse_changed_keys(ordered: list[Table], rows: list[tuple[Any, ...]]) -> dict[str, Changes]:
    audited = [t for t in ordered if t.audited]
    return {audited[int(r[0])].name: Changes(int(r[1]), tuple(r[2]) if r[1] else (), int(r[3])) for r in rows}


def _delete_keys(conn: psycopg.Connection, table: Table, changes: Changes) -> bytes:
    """`DELETE ... USING unnest(arrays)`: con la cantidad de claves a la vista, el planificador
    elige sondear la clave primaria (pocas) o un hash join (muchas); una tabla temporal sin
    estadísticas lo llevaba a recorrer la tabla entera aunque hubiera una sola clave."""
    literals = []
    for text, typ in zip(changes.arrays, table.pk_types, strict=True):
        # El texto de un array de enteros no tiene comillas ni barras: va tal cual.
        literal = f"'{text}'" if typ in INTEGER_TYPES else sql.Literal(text).as_string(conn)
        literals.append(f"{literal}::{typ}[]")
    head = sql.SQL("DELETE FROM {t} AS t USING unnest(").format(t=table.ident).as_string(conn)
    tail = sql.SQL(") AS k({cols}) WHERE {cond};\n").format(
        cols=_cols(table.pk),
        cond=sql.SQL(" AND ").join(sql.SQL("t.{c} = k.{c}").format(c=sql.Identifier(c)) for c in table.pk),
    )
    return (head + ", ".join(literals) + tail.as_string(conn)).encode()


def _sql_text(conn: psycopg.Connection, statement: sql.Composable) -> bytes:
    return (statement.as_string(conn) + ";\n").encode()


@dataclass(frozen=True)
class Point:
    """Un backup como punto de restauración: lo que `punto_restauracion` anota de él."""

    id_backup: int
    tipo: str
    nombre_archivo: str
    id_backup_completo: int


def marker_sql(conn: psycopg.Connection, point: Point, taken_at: datetime) -> bytes:
    """Al final de cada archivo: la base queda en el estado de este backup."""
    table = sql.SQL("public.{}").format(sql.Identifier(MARKER_TABLE))
    return _sql_text(conn, sql.SQL("DELETE FROM {}").format(table)) + _sql_text(
        conn,
        sql.SQL(
            "INSERT INTO {} (id_backup, tipo, nombre_archivo, id_backup_completo, fecha_instantanea) "
            "VALUES ({}, {}, {}, {}, {})"
        ).format(
            table,
            sql.Literal(point.id_backup),
            sql.Literal(point.tipo),
            sql.Literal(point.nombre_archivo),
            sql.Literal(point.id_backup_completo),
            sql.Literal(taken_at),
        ),
    )


def state_check(
    conn: psycopg.Connection,
    *,
    point: Point,
    base: Manifiesto,
    fingerprint: str,
    audited: list[Table],
) -> bytes:
    """El bloque con que empieza un diferencial o incremental: se niega, sin tocar nada, si la base
    no está en el estado de su predecesor.

    Estado = esquema (huella) + `punto_restauracion` (el último archivo aplicado) + ninguna fila
    escrita después de la instantánea de ese punto (lo restaurado conserva sus sellos; cualquier
    escritura posterior lleva `now()`). El catálogo de backups no cuenta: se reescribe desde los
    manifiestos al restaurar.

    Un diferencial acepta el completo o cualquier punto anterior de su cadena (es acumulativo); un
    incremental, solo su predecesor (o él mismo: aplicarlo otra vez no cambia nada).
    """
    if point.tipo == "DIFERENCIAL":
        needs = f"Este diferencial se aplica sobre el backup completo {base.id_backup} ({base.nombre_archivo}): restaure primero ese completo."
        allowed = sql.SQL("m.id_backup_completo = {} AND m.id_backup <= {}").format(
            sql.Literal(base.id_backup), sql.Literal(point.id_backup)
        )
    else:
        needs = (
            f"Este incremental ({point.nombre_archivo}) se aplica sobre el backup {base.tipo} {base.id_backup} "
            f"({base.nombre_archivo}): restaure primero la cadena hasta ese backup, en orden."
        )
        allowed = sql.SQL("m.id_backup IN ({}, {})").format(
            sql.Literal(base.id_backup), sql.Literal(point.id_backup)
        )
    watched = [t for t in audited if t.audited and t.name != CATALOG_TABLE]
    # max() y no EXISTS: una base recién restaurada no tiene estadísticas y, con EXISTS, el
    # planificador prefería recorrer la tabla entera (1,7 M de filas en cada archivo de la cadena);
    # max() siempre baja por el índice de fecha_actualizacion.
    changed = sql.SQL(" ").join(
        sql.SQL("WHEN (SELECT max(fecha_actualizacion) FROM {t}) > m.fecha_instantanea THEN {n}").format(
            t=t.ident, n=sql.Literal(t.name)
        )
        for t in watched
    )
    check = sql.SQL(
        "DO $inventario$\nDECLARE m record; cambiada text;\nBEGIN\n"
        "  IF ({fp_sql}) IS DISTINCT FROM {fp} THEN\n"
        "    RAISE EXCEPTION '%', {msg_schema};\n  END IF;\n"
        "  SELECT * INTO m FROM public.{marker} ORDER BY fecha_restauracion DESC LIMIT 1;\n"
        "  IF NOT FOUND THEN\n    RAISE EXCEPTION '%', {msg_none};\n  END IF;\n"
        "  IF NOT ({allowed}) THEN\n"
        "    RAISE EXCEPTION '%', format({msg_other}, m.id_backup, m.nombre_archivo);\n  END IF;\n"
        "  cambiada := CASE {changed} END;\n"
        "  IF cambiada IS NOT NULL THEN\n"
        "    RAISE EXCEPTION '%', format({msg_changed}, m.id_backup, m.nombre_archivo, cambiada);\n  END IF;\n"
        "END\n$inventario$"
    ).format(
        fp_sql=sql.SQL(FINGERPRINT_SQL.strip()),
        fp=sql.Literal(fingerprint),
        msg_schema=sql.Literal("El esquema de la base no coincide con el del backup. " + needs),
        marker=sql.Identifier(MARKER_TABLE),
        msg_none=sql.Literal(
            "La base no está en el estado de ningún backup (no viene de restaurar uno). " + needs
        ),
        allowed=allowed,
        msg_other=sql.Literal(
            "La base está en el estado del backup %s (%s), no en el que corresponde. "
            + needs.replace("%", "%%")
        ),
        changed=changed if watched else sql.SQL("WHEN false THEN NULL"),
        msg_changed=sql.Literal(
            "La base cambió después de restaurar el backup %s (%s): hay filas escritas después en la tabla %s. "
            + needs.replace("%", "%%")
        ),
    )
    return _sql_text(conn, check)


def write_changes(
    writer: AtomicGzipWriter,
    conn: psycopg.Connection,
    *,
    ordered: list[Table],
    cutoff: datetime,
    base: Manifiesto,
    comment: str,
    check: bytes,
    marker: bytes,
    sequence_values: list[tuple[str, int, bool]],
    changes: dict[str, Changes],
    tail: bytes = b"",
) -> tuple[DumpResult, list[tuple[bytes | None, ...]]]:
    """Escribe un diferencial o incremental leyendo en la instantánea abierta en `conn`; `base` es
    el predecesor (el completo, o el backup anterior de la cadena); `ordered`, las tablas de la
    instantánea (`pg_esquema.tables`); `sequence_values`, sus secuencias, y `changes`, lo que da
    `changed_keys_query` en ella.

    Su costo crece con las filas cambiadas, no con la base: una consulta (índices sobre
    `fecha_actualizacion` y `registro_eliminaciones`) da las claves cambiadas de todas las tablas y
    con qué deducir sus filas (ver `changed_keys_query`); luego un COPY por tabla con cambios. Una tabla
    sin cambios no escribe nada en el archivo: al aplicarlo no cuesta nada.

    `tail`: SQL que se envía detrás de los COPY, en la misma ida y vuelta (ver `copy_many`);
    devuelve también sus filas, en texto.
    """
    for table in ordered:
        if table.audited:
            found = base.tabla(table.name)
            if found is None or found.filas is None or found.claves_recientes is None:
                raise DumpError(f"El backup base no describe la tabla {table.name}; haga un COMPLETO")
    compressor = BackgroundCompressor(writer)
    try:
        result, tail_rows = _write_changes_body(
            compressor, conn, ordered, changes, cutoff, comment, check, marker, sequence_values, tail
        )
    finally:
        compressor.close()
    for entry in result.tables:
        found = base.tabla(entry.nombre)
        if entry.nombre in changes and found is not None and found.filas is not None:
            # F − R − |K ∩ F_viejas| filas del predecesor siguen intactas; más las escritas.
            entry.filas = (
                found.filas
                - len(found.claves_recientes or [])
                - changes[entry.nombre].old_touched
                + entry.filas_escritas
            )
    return result, tail_rows


def _write_changes_body(
    writer: BackgroundCompressor,
    conn: psycopg.Connection,
    ordered: list[Table],
    changes: dict[str, Changes],
    cutoff: datetime,
    comment: str,
    check: bytes,
    marker: bytes,
    sequence_values: list[tuple[str, int, bool]],
    tail: bytes,
) -> tuple[DumpResult, list[tuple[bytes | None, ...]]]:
    w = writer.write
    w(QUIET + PROLOGUE)
    w(comment.encode() + b"\n")
    w(f"SET LOCAL {RESTORE_GUC} = 'on';\nSET CONSTRAINTS ALL DEFERRED;\n".encode())
    w(check)
    stats = {t.name: TablaManifiesto(nombre=t.name) for t in ordered}
    # Solo las tablas con cambios (o sin auditoría) aparecen en el archivo.
    present = [t for t in ordered if not t.audited or changes[t.name].count]
    # 1) Borrar las claves a reemplazar o borrar (hijas antes que padres).
    for table in reversed(present):
        if table.audited:
            stats[table.name].claves_eliminadas = changes[table.name].count
            w(_delete_keys(conn, table, changes[table.name]))
        else:
            # Sin auditoría (p. ej. alembic_version): se copia entera, es pequeña.
            w(_sql_text(conn, sql.SQL("DELETE FROM {t}").format(t=table.ident)))
    # 2) Filas actuales (padres antes que hijas): todos los COPY en una ida y vuelta.
    since = sql.Literal(cutoff).as_bytes(conn)
    copies = []
    for table in present:
        header, select = _copy_text(table)
        copies.append(
            (header, select + (b" WHERE fecha_actualizacion >= " + since if table.audited else b""))
        )
    counts, tail_rows = copy_many(conn, writer, copies, tail)
    for table, written in zip(present, counts, strict=True):
        stats[table.name].filas_escritas = written
        if table.audited:
            # Las claves enviadas incluyen las reemplazadas; "eliminadas" son las que ya no existen.
            stats[table.name].claves_eliminadas -= written
    w(setval_sql(conn, sequence_values))
    w(marker)
    w(EPILOGUE)
    for table in ordered:
        if not table.audited:
            stats[table.name].filas = stats[table.name].filas_escritas  # copiada entera
    return DumpResult([stats[t.name] for t in ordered]), tail_rows


@functools.lru_cache(maxsize=64)
def _copy_text(table: Table) -> tuple[bytes, bytes]:
    """(cabecera `COPY ... FROM stdin;` del archivo, `SELECT` de sus columnas) de una tabla."""
    return (
        sql.SQL("COPY {} ({}) FROM stdin;\n").format(table.ident, _cols(table.columns)).as_bytes(None),
        sql.SQL("SELECT {cols} FROM {t}").format(cols=_cols(table.columns), t=table.ident).as_bytes(None),
    )


def setval_sql(conn: psycopg.Connection, values: list[tuple[str, int, bool]]) -> bytes:
    """Todas las secuencias en UNA sentencia (una ida y vuelta al aplicar el archivo). Todas, no
    solo las que cambiaron: el predecesor pudo dejarlas en otro valor que el de su manifiesto."""
    if not values:
        return b""
    return _sql_text(
        conn,
        sql.SQL("SELECT ")
        + sql.SQL(", ").join(
            sql.SQL("pg_catalog.setval({seq}, {v}, {called})").format(
                seq=sql.Literal("public." + sql.Identifier(name).as_string(conn)),
                v=sql.Literal(value),
                called=sql.Literal(called),
            )
            for name, value, called in values
        ),
    )


def _key_json(table: Table, alias: str) -> sql.Composable:
    return sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(
            sql.SQL("{}, {}.{}").format(sql.Literal(c), sql.Identifier(alias), sql.Identifier(c))
            for c in table.pk
        )
    )


def recent_state_query(ordered: list[Table], cutoff: datetime) -> tuple[bytes, dict[str, Any]]:
    """En la instantánea de un backup, UNA consulta: claves escritas y eliminaciones desde el corte
    (ver `parse_recent_state`)."""
    return _recent_state_text(tuple(t for t in ordered if t.audited)), {"corte": cutoff}


@functools.lru_cache(maxsize=16)
def _recent_state_text(audited: tuple[Table, ...]) -> bytes:
    """El texto de `recent_state_query` para un esquema (ver `_changed_keys_text`)."""
    parts = [
        sql.SQL(
            "SELECT {i}::int, coalesce(jsonb_agg({key}), '[]'::jsonb) FROM {t} AS t "
            "WHERE fecha_actualizacion >= %(corte)s"
        ).format(i=sql.Literal(i), key=_key_json(table, "t"), t=table.ident)
        for i, table in enumerate(audited)
    ]
    parts.append(
        sql.SQL(
            "SELECT -1, coalesce(jsonb_agg(id_eliminacion), '[]'::jsonb) FROM public.{} "
            "WHERE fecha_actualizacion >= %(corte)s"
        ).format(sql.Identifier(TOMBSTONES))
    )
    return sql.SQL(" UNION ALL ").join(parts).as_bytes(None)


def recent_state_tail(conn: psycopg.Connection, ordered: list[Table], cutoff: datetime) -> bytes:
    """`recent_state_query` con el corte ya escrito, y el COMMIT de la instantánea: para enviarlos
    detrás de los COPY (`write_changes(tail=...)`). Sus filas vuelven en texto: ver
    `parse_recent_state_text`."""
    query, params = recent_state_query(ordered, cutoff)
    return psycopg.ClientCursor(conn).mogrify(query, params).encode() + b";\nCOMMIT"


def parse_recent_state_text(
    ordered: list[Table], rows: list[tuple[bytes | None, ...]]
) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    return parse_recent_state(ordered, [(int(i or 0), json.loads(v or b"[]")) for i, v in rows])


def parse_recent_state(
    ordered: list[Table], rows: list[tuple[Any, ...]]
) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    audited = [t for t in ordered if t.audited]
    keys: dict[str, list[dict[str, Any]]] = {}
    deletions: list[int] = []
    for index, values in rows:
        if index < 0:
            deletions = [int(v) for v in values]
        else:
            keys[audited[index].name] = values
    return keys, deletions


def _xid32(xid: int) -> str:
    """Un xid8 como el `xid` de 32 bits que muestran `xmin` y `age()`."""
    return str(xid % 2**32)


def changes_since(conn: psycopg.Connection, base: Manifiesto, ignored: frozenset[str]) -> str | None:
    """Qué cambió desde la instantánea de `base` (None: nada), sin recorrer tablas.

    Por tabla, en el rango del índice de `fecha_actualizacion` desde el corte siguiente de `base`,
    alguna versión de fila escrita por una transacción que `base` no veía (`xmin` >= su
    `xid_siguiente` o entre sus `xids_en_curso`, de `pg_current_snapshot()`); y las
    secuencias contra las de `base`. `ignored`: tablas que escribe la propia maquinaria (catálogo
    de backups, ejecuciones de jobs); sus cambios viajan en el siguiente backup que se haga.
    Un falso "nada cambió" solo retrasa el punto siguiente: el incremental siempre lee desde el
    corte, no desde esta comprobación.
    """
    if base.fecha_corte_siguiente is None or base.xid_siguiente is None or base.secuencias is None:
        return "el backup anterior no registra su estado"
    cutoff = base.fecha_corte_siguiente
    in_progress = [_xid32(x) for x in base.xids_en_curso]
    watched = [t for t in tables(conn) if t.audited and t.name not in ignored]
    if watched:
        # Una consulta: el CASE se detiene en la primera tabla con cambios.
        query = sql.SQL("SELECT CASE {} END").format(
            sql.SQL(" ").join(
                sql.SQL(
                    "WHEN EXISTS (SELECT 1 FROM {t} WHERE fecha_actualizacion >= %(corte)s "
                    "AND (age(xmin) <= age(%(xid)s::xid) OR xmin::text = ANY(%(curso)s::text[])){extra}) "
                    "THEN {name}"
                ).format(
                    t=table.ident,
                    extra=sql.SQL(" AND tabla <> ALL(%(ignoradas)s::text[])")
                    if table.name == TOMBSTONES
                    else sql.SQL(""),
                    name=sql.Literal(table.name),
                )
                for table in watched
            )
        )
        row = conn.execute(
            query,
            {
                "corte": cutoff,
                "xid": _xid32(base.xid_siguiente),
                "curso": in_progress,
                "ignoradas": sorted(ignored),
            },
        ).fetchone()
        if row and row[0]:
            return f"tabla {row[0]}"
    before = {name: tuple(value) for name, value in base.secuencias.items()}
    for name, value, called in sequences(conn):
        if any(name.startswith(t + "_") for t in ignored):
            continue
        if before.get(name) != (value, called):
            return f"secuencia {name}"
    return None
