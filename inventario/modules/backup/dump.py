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

import queue
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import psycopg
from psycopg import sql
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


class _CopyCounter:
    """Reenvía la salida de COPY al archivo contando filas (una por salto de línea en formato texto)."""

    def __init__(self, writer: AtomicGzipWriter | BackgroundCompressor) -> None:
        self.writer = writer
        self.rows = 0

    def copy(self, conn: psycopg.Connection, query: sql.Composable) -> int:
        # COPY entrega una fila por mensaje: se juntan en bloques para no pagar gzip por fila.
        rows = 0
        buffer = bytearray()
        with conn.cursor().copy(sql.SQL("COPY ({}) TO STDOUT").format(query)) as copy:
            for data in copy:
                buffer += data
                if len(buffer) >= CHUNK:
                    rows += buffer.count(b"\n")
                    self.writer.write(buffer)
                    buffer = bytearray()
        rows += buffer.count(b"\n")
        buffer += b"\\.\n"
        self.writer.write(buffer)
        self.rows += rows
        return rows


INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})


def _copy_keys(counter: _CopyCounter, conn: psycopg.Connection, table: Table, cutoff: datetime) -> int:
    """Las claves cambiadas o borradas, en formato COPY.

    Con claves enteras (todas las de Inventario) el servidor arma el texto en una sola fila: COPY
    entrega un mensaje por fila y, con decenas de miles de claves, ese ir y venir pesaba más que
    la consulta. El texto de un entero no necesita escapes, así que es idéntico al de COPY.
    """
    if not set(table.pk_types) <= INTEGER_TYPES:
        return counter.copy(conn, _keys_query(table, cutoff))
    line = sql.SQL(" || E'\\t' || ").join(sql.SQL("k.{}::text").format(sql.Identifier(c)) for c in table.pk)
    row = conn.execute(
        sql.SQL("SELECT count({line}), coalesce(string_agg({line}, E'\\n'), '') FROM ({keys}) AS k").format(
            line=line, keys=_keys_query(table, cutoff)
        )
    ).fetchone()
    assert row is not None
    rows, body = int(row[0]), row[1].encode()  # count(línea): la misma cuenta que el texto
    counter.writer.write(body + (b"\n" if rows else b"") + b"\\.\n")
    counter.rows += rows
    return rows


def _cols(names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in names)


def _keys_query(table: Table, cutoff: datetime) -> sql.Composable:
    changed = sql.SQL("SELECT {pk} FROM {t} WHERE fecha_actualizacion >= {c}").format(
        pk=_cols(table.pk), t=table.ident, c=sql.Literal(cutoff)
    )
    deleted = sql.SQL(
        "SELECT {casts} FROM public.{tomb} WHERE tabla = {name} AND clave IS NOT NULL "
        "AND fecha_actualizacion >= {c}"
    ).format(
        casts=sql.SQL(", ").join(
            sql.SQL("(clave ->> {})::{}").format(sql.Literal(col), sql.SQL(typ))
            for col, typ in zip(table.pk, table.pk_types, strict=True)
        ),
        tomb=sql.Identifier(TOMBSTONES),
        name=sql.Literal(table.name),
        c=sql.Literal(cutoff),
    )
    return changed + sql.SQL(" UNION ") + deleted


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
    changed = sql.SQL(" ").join(
        sql.SQL(
            "WHEN EXISTS (SELECT 1 FROM {t} WHERE fecha_actualizacion > m.fecha_instantanea) THEN {n}"
        ).format(t=t.ident, n=sql.Literal(t.name))
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
    cutoff: datetime,
    base: Manifiesto,
    comment: str,
    check: bytes,
    marker: bytes,
    snapshot: str,
    connect: Callable[[], psycopg.Connection],
) -> DumpResult:
    """Escribe un diferencial o incremental leyendo en la instantánea abierta en `conn` (exportada
    como `snapshot`); `base` es el predecesor (el completo, o el backup anterior de la cadena).

    Su costo crece con las filas cambiadas: solo índices sobre `fecha_actualizacion` y
    `registro_eliminaciones`; las filas por tabla se deducen del predecesor (ver `_old_rows_now`),
    en otra conexión con la misma instantánea, mientras se escribe el archivo.
    """
    ordered = tables(conn)
    for table in ordered:
        if table.audited:
            found = base.tabla(table.name)
            if found is None or found.filas is None or found.claves_recientes is None:
                raise DumpError(f"El backup base no describe la tabla {table.name}; haga un COMPLETO")
    counted: dict[str, int] = {}
    failure: list[BaseException] = []

    def count_rows() -> None:
        try:
            with connect() as other:
                other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                other.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                for table in ordered:
                    if table.audited:
                        counted[table.name] = _old_rows_now(other, table, cutoff, base)
                other.execute("COMMIT")
        except BaseException as exc:
            failure.append(exc)

    counter_thread = threading.Thread(target=count_rows, name="backup-conteo", daemon=True)
    counter_thread.start()
    compressor = BackgroundCompressor(writer)
    try:
        try:
            result = _write_changes_body(compressor, conn, ordered, cutoff, comment, check, marker)
        finally:
            compressor.close()
    finally:
        counter_thread.join()
    if failure:
        raise DumpError(f"No se pudieron contar las filas: {failure[0]}") from failure[0]
    for entry in result.tables:
        if entry.nombre in counted:
            entry.filas = counted[entry.nombre] + entry.filas_escritas
    return result


def _write_changes_body(
    writer: BackgroundCompressor,
    conn: psycopg.Connection,
    ordered: list[Table],
    cutoff: datetime,
    comment: str,
    check: bytes,
    marker: bytes,
) -> DumpResult:
    w = writer.write
    w(QUIET + PROLOGUE)
    w(comment.encode() + b"\n")
    w(f"SET LOCAL {RESTORE_GUC} = 'on';\nSET CONSTRAINTS ALL DEFERRED;\n".encode())
    w(check)
    counter = _CopyCounter(writer)
    stats = {t.name: TablaManifiesto(nombre=t.name) for t in ordered}
    key_tables: dict[str, str] = {}
    # 1) Claves a reemplazar o borrar, y borrado (hijas antes que padres).
    for index, table in enumerate(ordered):
        if not table.audited:
            continue
        temp = f"_inventario_claves_{index}"
        key_tables[table.name] = temp
        w(
            _sql_text(
                conn,
                sql.SQL("CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {pk} FROM {t} WITH NO DATA").format(
                    tmp=sql.Identifier(temp), pk=_cols(table.pk), t=table.ident
                ),
            )
        )
        w(
            sql.SQL("COPY {} ({}) FROM stdin;\n")
            .format(sql.Identifier(temp), _cols(table.pk))
            .as_string(conn)
            .encode()
        )
        stats[table.name].claves_eliminadas = _copy_keys(counter, conn, table, cutoff)
    for table in reversed(ordered):
        if table.audited:
            temp = key_tables[table.name]
            condition = sql.SQL(" AND ").join(
                sql.SQL("t.{c} = k.{c}").format(c=sql.Identifier(c)) for c in table.pk
            )
            statement = sql.SQL("DELETE FROM {t} AS t USING {tmp} AS k WHERE {cond}").format(
                t=table.ident, tmp=sql.Identifier(temp), cond=condition
            )
        else:
            # Sin auditoría (p. ej. alembic_version): se copia entera, es pequeña.
            statement = sql.SQL("DELETE FROM {t}").format(t=table.ident)
        w(_sql_text(conn, statement))
    # Sin esperar al COMMIT: al restaurar una cadena en UNA transacción, el archivo siguiente crea
    # sus propias tablas de claves con los mismos nombres.
    for temp in key_tables.values():
        w(_sql_text(conn, sql.SQL("DROP TABLE {}").format(sql.Identifier(temp))))
    # 2) Filas actuales (padres antes que hijas).
    for table in ordered:
        select = sql.SQL("SELECT {cols} FROM {t}").format(cols=_cols(table.columns), t=table.ident)
        if table.audited:
            select += sql.SQL(" WHERE fecha_actualizacion >= {c}").format(c=sql.Literal(cutoff))
        w(
            sql.SQL("COPY {} ({}) FROM stdin;\n")
            .format(table.ident, _cols(table.columns))
            .as_string(conn)
            .encode()
        )
        written = counter.copy(conn, select)
        stats[table.name].filas_escritas = written
        if table.audited:
            # Las claves enviadas incluyen las reemplazadas; "eliminadas" son las que ya no existen.
            stats[table.name].claves_eliminadas -= written
    for name, value, called in sequences(conn):
        w(
            _sql_text(
                conn,
                sql.SQL("SELECT pg_catalog.setval({seq}, {v}, {called})").format(
                    seq=sql.Literal("public." + sql.Identifier(name).as_string(conn)),
                    v=sql.Literal(value),
                    called=sql.Literal(called),
                ),
            )
        )
    w(marker)
    w(EPILOGUE)
    for table in ordered:
        if not table.audited:
            stats[table.name].filas = stats[table.name].filas_escritas  # copiada entera
    return DumpResult([stats[t.name] for t in ordered])


def _key_json(table: Table, alias: str) -> sql.Composable:
    return sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(
            sql.SQL("{}, {}.{}").format(sql.Literal(c), sql.Identifier(alias), sql.Identifier(c))
            for c in table.pk
        )
    )


def _old_rows_now(conn: psycopg.Connection, table: Table, cutoff: datetime, base_manifest: Manifiesto) -> int:
    """Filas de la tabla en la instantánea que no se escribieron desde el corte, sin recorrerla:
    F − R − |K ∩ F_viejas|; sumando U (las escritas desde el corte) da el total.

    F: filas del completo; R: las del completo escritas desde el corte (`claves_recientes`);
    F_viejas = F − R, que no se tocaron desde el corte; K: claves cambiadas o borradas desde el
    corte; U: filas actuales escritas desde el corte. Una clave de K estaba en F_viejas si su fila
    actual nació antes del corte, o si se borró después del completo una fila nacida antes del
    corte (las borradas antes de la instantánea están en `eliminaciones_recientes`).
    """
    # Sin sondear la tabla clave por clave: las claves de F_viejas tocadas desde el corte son las
    # filas actuales escritas desde el corte que nacieron antes (rango del índice de
    # fecha_actualizacion) más las borradas desde el corte que habían nacido antes (incluye la
    # clave vieja de un cambio de clave primaria). Menos las que ya estaban en R.
    query = sql.SQL(
        """
        SELECT count(*) FROM (
            SELECT {key_t} AS clave FROM {t} AS t
            WHERE t.fecha_actualizacion >= %(corte)s AND t.fecha_creacion < %(corte)s
            UNION
            SELECT e.clave FROM public.{tomb} AS e
            WHERE e.tabla = %(tabla)s AND e.clave IS NOT NULL
              AND e.fecha_actualizacion >= %(corte)s AND e.fecha_creacion_fila < %(corte)s
              AND e.id_eliminacion NOT IN (SELECT unnest(%(previas)s::bigint[]))
            EXCEPT
            SELECT unnest(%(recientes)s::jsonb[])
        ) AS tocadas
        """
    ).format(key_t=_key_json(table, "t"), t=table.ident, tomb=sql.Identifier(TOMBSTONES))
    base = base_manifest.tabla(table.name)
    assert base is not None and base.filas is not None
    row = conn.execute(
        query,
        {
            "recientes": [Jsonb(k) for k in base.claves_recientes or []],
            "corte": cutoff,
            "tabla": table.name,
            "previas": base_manifest.eliminaciones_recientes,
        },
    ).fetchone()
    assert row is not None
    return base.filas - len(base.claves_recientes or []) - int(row[0])


def recent_state(
    conn: psycopg.Connection, cutoff: datetime
) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    """En la instantánea de un completo: claves escritas y eliminaciones desde el corte."""
    keys: dict[str, list[dict[str, Any]]] = {}
    for table in tables(conn):
        if table.audited:
            rows = conn.execute(
                sql.SQL("SELECT {key} FROM {t} AS t WHERE fecha_actualizacion >= %s").format(
                    key=_key_json(table, "t"), t=table.ident
                ),
                (cutoff,),
            ).fetchall()
            keys[table.name] = [r[0] for r in rows]
    deletions = [
        int(r[0])
        for r in conn.execute(
            sql.SQL("SELECT id_eliminacion FROM public.{} WHERE fecha_actualizacion >= %s").format(
                sql.Identifier(TOMBSTONES)
            ),
            (cutoff,),
        )
    ]
    return keys, deletions


def watermark(conn: psycopg.Connection) -> tuple[int, list[int]]:
    """En la instantánea de un backup: el siguiente xid y los xid en curso (`pg_current_snapshot`).

    Una versión de fila que no era visible en esa instantánea tiene `xmin` >= ese xid o entre los
    que estaban en curso: así el incremental siguiente sabe, sin escribir nada, si algo cambió.
    """
    row = conn.execute(
        "SELECT pg_snapshot_xmax(s)::text, array(SELECT x::text FROM pg_snapshot_xip(s) AS x) "
        "FROM pg_current_snapshot() AS s"
    ).fetchone()
    assert row is not None
    return int(row[0]), [int(x) for x in row[1]]


def _xid32(xid: int) -> str:
    """Un xid8 como el `xid` de 32 bits que muestran `xmin` y `age()`."""
    return str(xid % 2**32)


def changes_since(conn: psycopg.Connection, base: Manifiesto, ignored: frozenset[str]) -> str | None:
    """Qué cambió desde la instantánea de `base` (None: nada), sin recorrer tablas.

    Por tabla, en el rango del índice de `fecha_actualizacion` desde el corte siguiente de `base`,
    alguna versión de fila escrita por una transacción que `base` no veía (ver `watermark`); y las
    secuencias contra las de `base`. `ignored`: tablas que escribe la propia maquinaria (catálogo
    de backups, ejecuciones de jobs); sus cambios viajan en el siguiente backup que se haga.
    Un falso "nada cambió" solo retrasa el punto siguiente: el incremental siempre lee desde el
    corte, no desde esta comprobación.
    """
    if base.fecha_corte_siguiente is None or base.xid_siguiente is None or base.secuencias is None:
        return "el backup anterior no registra su estado"
    cutoff = base.fecha_corte_siguiente
    in_progress = [_xid32(x) for x in base.xids_en_curso]
    for table in tables(conn):
        if not table.audited or table.name in ignored:
            continue
        query = sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {t} WHERE fecha_actualizacion >= %(corte)s "
            "AND (age(xmin) <= age(%(xid)s::xid) OR xmin::text = ANY(%(curso)s::text[])){extra})"
        ).format(
            t=table.ident,
            extra=sql.SQL(" AND tabla <> ALL(%(ignoradas)s::text[])")
            if table.name == TOMBSTONES
            else sql.SQL(""),
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
            return f"tabla {table.name}"
    before = {name: tuple(value) for name, value in base.secuencias.items()}
    for name, value, called in sequences(conn):
        if any(name.startswith(t + "_") for t in ignored):
            continue
        if before.get(name) != (value, called):
            return f"secuencia {name}"
    return None
