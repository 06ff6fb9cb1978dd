"""BackupService: ejecutar, catalogar, recuperar y limpiar backups. Sin HTTP.

Un solo backup a la vez en todo el despliegue: cerrojo consultivo de PostgreSQL en una conexión
propia, que el servidor libera solo si el proceso muere.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import PoolProxiedConnection

from inventario.archivos import human_size, nearest_existing
from inventario.auditoria import RESTORE_GUC
from inventario.errors import (
    Conflicto,
    DemasiadoGrande,
    Desaparecido,
    DomainError,
    NoDisponible,
    NoEncontrado,
)
from inventario.modules.backup import email as mail
from inventario.modules.backup import pg_esquema, queries
from inventario.modules.backup.dump import (
    Changes,
    DumpError,
    Point,
    changed_keys_query,
    changes_since,
    marker_sql,
    parse_changed_keys,
    parse_recent_state,
    parse_recent_state_text,
    recent_state_query,
    recent_state_tail,
    state_check,
    write_changes,
    write_full,
)
from inventario.modules.backup.exceptions import (
    BackupEnCurso,
    BackupError,
    SinCambios,
    backup_error,
    sin_espacio,
)
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.model import EstadoBackup, HistorialBackup, TipoBackup, TipoSolicitado
from inventario.modules.backup.notifications import Evento
from inventario.modules.backup.repo import BackupRepo, Punto, VerifiedFile, backup_name, manifest_path
from inventario.runtime import Runtime

if TYPE_CHECKING:
    from inventario.modules.remoto.model import CopiaRemota
    from inventario.modules.remoto.service import RemotoService

log = logging.getLogger(__name__)

BACKUP_LOCK_KEY = 7261_0001
# Sin permiso para ver todas las sesiones, el corte del diferencial retrocede este margen.
HIDDEN_SESSIONS_MARGIN = timedelta(hours=1)


def backup_tipo(slot: datetime, full_day: int, tz: tzinfo) -> TipoBackup:
    """COMPLETO el día `BACKUP_FULL_DAY` (0 = lunes) de la hora programada; DIFERENCIAL los demás.

    Cuenta el día de la hora programada, no el de la ejecución: el backup del lunes recuperado
    tarde sigue siendo COMPLETO, y el del domingo recuperado el lunes sigue siendo DIFERENCIAL.
    """
    return TipoBackup.COMPLETO if slot.astimezone(tz).weekday() == full_day else TipoBackup.DIFERENCIAL


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return exc.mensaje
    if sin_espacio(exc):
        where = f" ({exc.filename})" if exc.filename else ""
        return (
            f"Disco lleno{where}: no queda espacio para escribir el backup. Libere espacio en BACKUP_PATH "
            "(o baje BACKUP_RETENTION_DAYS) y vuelva a intentar"
        )
    return f"{exc.__class__.__name__}: {exc}"


@dataclass
class Decision:
    tipo: TipoBackup
    base: HistorialBackup | None = None
    base_manifest: Manifiesto | None = None
    nota: str | None = None


@functools.cache
def _heads_sql() -> tuple[tuple[str, ...], bytes]:
    """Columnas y texto de la consulta de `BackupService._heads` (se compone una vez)."""
    names = tuple(c.name for c in HistorialBackup.__table__.columns)
    done = "estado = %(ok)s AND eliminado IS NOT TRUE"
    query = sql.SQL(
        "WITH f AS (SELECT id_backup FROM {t} WHERE tipo = %(full)s AND " + done + " "
        "ORDER BY id_backup DESC LIMIT 1), "
        "c AS (SELECT id_backup FROM {t} WHERE tipo = ANY(%(tipos)s) AND " + done + " "
        "AND id_backup >= (SELECT id_backup FROM f) ORDER BY id_backup DESC LIMIT 1) "
        "SELECT x.en_proceso, h.id_backup = (SELECT id_backup FROM f), h.id_backup = "
        "(SELECT id_backup FROM c), {cols} "
        "FROM (SELECT EXISTS (SELECT 1 FROM {t} WHERE estado = %(running)s) AS en_proceso) AS x "
        "LEFT JOIN {t} AS h ON h.id_backup IN ((SELECT id_backup FROM f), (SELECT id_backup FROM c))"
    ).format(
        t=sql.Identifier(HistorialBackup.__tablename__),
        cols=sql.SQL(", ").join(sql.Identifier("h", n) for n in names),
    )
    return names, query.as_bytes(None)


# Las columnas que `apply_manifest` escribe: el UPDATE de `_complete_direct`.
_COMPLETE_COLUMNS = (
    "tipo",
    "nombre_archivo",
    "estado",
    "mensaje_error",
    "tamanio_bytes",
    "tamanio_legible",
    "duracion_segundos",
    "tablas_respaldadas",
    "registros_totales",
    "hash_md5",
    "id_backup_base",
    "fecha_instantanea",
    "fecha_corte",
    "revision_esquema",
    "huella_esquema",
    "nota",
)
_RETURNED = tuple(c.name for c in HistorialBackup.__table__.columns)


@functools.lru_cache(maxsize=4)
def _insert_sql(columns: tuple[str, ...]) -> tuple[tuple[str, ...], bytes]:
    """Columnas y texto del INSERT de `BackupService._insert_running`: la fila solo se inserta si
    ningún backup del catálogo usa ya ese nombre. Cada valor lleva el tipo de su columna (en un
    INSERT ... SELECT un NULL sin tipo sería `text`)."""
    table = HistorialBackup.__table__
    names = tuple(c.name for c in table.columns)
    dialect = postgresql.dialect()
    query = sql.SQL(
        "INSERT INTO {t} ({cols}) SELECT {vals} WHERE NOT EXISTS "
        "(SELECT 1 FROM {t} WHERE nombre_archivo = %(nombre_archivo)s) RETURNING {ret}"
    ).format(
        t=sql.Identifier(HistorialBackup.__tablename__),
        cols=sql.SQL(", ").join(sql.Identifier(k) for k in columns),
        vals=sql.SQL(", ").join(
            # Sin la longitud: `'...'::varchar(100)` recorta en silencio lo que sobra, y un valor
            # demasiado largo debe fallar como en un INSERT ... VALUES.
            sql.SQL("{}::{}").format(
                sql.Placeholder(k),
                sql.SQL(re.sub(r"^(VARCHAR|CHAR)\(\d+\)$", r"\1", table.c[k].type.compile(dialect=dialect))),
            )
            for k in columns
        ),
        ret=sql.SQL(", ").join(sql.Identifier(n) for n in names),
    )
    return names, query.as_bytes(None)


@functools.cache
def _complete_sql() -> tuple[tuple[str, ...], bytes]:
    """Columnas y texto del UPDATE de `BackupService._complete_direct` (se compone una vez)."""
    query = sql.SQL("UPDATE {t} SET {sets} WHERE id_backup = %(_id)s RETURNING {ret}").format(
        t=sql.Identifier(HistorialBackup.__tablename__),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in _COMPLETE_COLUMNS
        ),
        ret=sql.SQL(", ").join(sql.Identifier(n) for n in _RETURNED),
    )
    return _COMPLETE_COLUMNS, query.as_bytes(None)


def _rollback_if_open(conn: psycopg.Connection) -> None:
    """Tras un fallo en la conexión del cerrojo: deshace la transacción abierta, si la hay, para que
    la conexión quede libre para soltar el cerrojo (un error aquí no tapa el original)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass


# Lo que rompe una cadena sin cambiar el esquema: tablas vaciadas con TRUNCATE desde el corte (no
# dejan claves en registro_eliminaciones) y el último punto de restauración (una base restaurada a
# otro punto revirtió filas sin dejar rastro). `decide` lo mira antes de empezar y `_snapshot` otra
# vez dentro de la instantánea: un TRUNCATE o una restauración confirmados entre las dos no se ven
# en las claves cambiadas.
_CHAIN_COLUMNS = (
    "(SELECT string_agg(DISTINCT tabla, ', ') FROM public.{tomb} WHERE clave IS NULL AND fecha_actualizacion >= %s), "
    "m.id_backup, m.nombre_archivo, m.id_backup_completo, m.fecha_restauracion"
)
_CHAIN_FROM = (
    " FROM (SELECT 1) AS uno LEFT JOIN LATERAL (SELECT * FROM public.{marker} "
    "ORDER BY fecha_restauracion DESC LIMIT 1) AS m ON true"
)


def _chain_sql_format(text_sql: str) -> bytes:
    return (
        sql.SQL(text_sql)
        .format(
            fp=sql.SQL(pg_esquema.FINGERPRINT_SQL.strip()),
            tomb=sql.Identifier(pg_esquema.TOMBSTONES),
            marker=sql.Identifier(pg_esquema.MARKER_TABLE),
        )
        .as_bytes(None)
    )


@functools.cache
def _decide_sql() -> bytes:
    """La consulta de `BackupService.decide`: huella del esquema, lo de `_CHAIN_COLUMNS` y las
    secuencias (la huella no las ve)."""
    return _chain_sql_format(
        "SELECT ({fp}), "
        + _CHAIN_COLUMNS
        + ", array(SELECT sequencename::text FROM pg_catalog.pg_sequences WHERE schemaname = 'public')"
        + _CHAIN_FROM
    )


@functools.cache
def _chain_sql() -> bytes:
    """`_CHAIN_COLUMNS` solas: lo que `_snapshot` vuelve a mirar dentro de la instantánea."""
    return _chain_sql_format("SELECT " + _CHAIN_COLUMNS + _CHAIN_FROM)


def chain_break(
    tipo: TipoBackup,
    base: HistorialBackup,
    base_manifest: Manifiesto,
    full_id: int,
    truncated: str | None,
    restored: tuple[Any, ...] | None,
) -> str | None:
    """Por qué la cadena no puede seguir desde `base` (o None): tablas vaciadas con TRUNCATE desde
    su corte, o la base restaurada después a un punto que no es el suyo. `restored`: (id_backup,
    nombre_archivo, id_backup_completo, fecha_restauracion) del último punto de restauración."""
    if truncated:
        return f"Se vaciaron tablas con TRUNCATE ({truncated}) desde el backup {base.id_backup}"
    if restored is not None and restored[3] > base_manifest.fecha_instantanea:
        # Seguir vale solo si volvió a ese mismo punto (incremental) o a uno de la cadena del
        # completo (el diferencial relee todo desde su corte).
        same = restored[0] == base.id_backup if tipo == TipoBackup.INCREMENTAL else restored[2] == full_id
        if not same:
            return f"La base se restauró al backup {restored[0]} ({restored[1]}) después del backup {base.id_backup}"
    return None


@functools.cache
def _facts_sql(full: bool) -> bytes:
    return (
        sql.SQL(
            "SELECT {export}, clock_timestamp(), current_setting('server_version'), ({fp}), "
            "pg_snapshot_xmax(s)::text, array(SELECT x::text FROM pg_snapshot_xip(s) AS x), "
            "{alembic} FROM pg_current_snapshot() AS s"
        )
        .format(
            export=sql.SQL("pg_export_snapshot()" if full else "NULL::text"),
            fp=sql.SQL(pg_esquema.FINGERPRINT_SQL.strip()),
            alembic=sql.SQL(pg_esquema.ALEMBIC_EXISTS_SQL),
        )
        .as_bytes(None)
    )


# (filas del catálogo de tablas, nombres de secuencias, ¿hay alembic_version?) de una instantánea.
_SeenCatalog = tuple[list[tuple[Any, ...]], list[str], bool]
# Por motor (una base): se escribe y se lee con el cerrojo de backups tomado, uno a la vez.
_SCHEMA_SEEN: weakref.WeakKeyDictionary[Engine, _SeenCatalog] = weakref.WeakKeyDictionary()


@dataclass
class _Snapshot:
    """Lo que `BackupService._snapshot` lee de la instantánea."""

    snapshot_id: str | None
    taken_at: datetime
    version: str
    fingerprint: str
    xid_next: int
    xids_running: list[int]
    ordered: list[pg_esquema.Table]
    revision: str | None
    sequences: list[tuple[str, int, bool]]
    changes: dict[str, Changes]
    # Ver `_chain_sql` (None en un completo).
    truncated: str | None = None
    restored: tuple[Any, ...] | None = None


@dataclass
class CatalogHeads:
    """Ver `BackupService._heads`."""

    interrupted: bool
    full: HistorialBackup | None = None
    chain: HistorialBackup | None = None


def _heads_query() -> tuple[bytes, dict[str, Any]]:
    return _heads_sql()[1], {
        "ok": EstadoBackup.COMPLETADO.value,
        "full": TipoBackup.COMPLETO.value,
        "tipos": [t.value for t in TipoBackup],
        "running": EstadoBackup.EN_PROCESO.value,
    }


def _parse_heads(rows: list[tuple[Any, ...]]) -> CatalogHeads:
    names = _heads_sql()[0]
    heads = CatalogHeads(interrupted=bool(rows[0][0]))
    for row in rows:
        if row[3] is None:
            continue  # sin completo: el LEFT JOIN no encontró nada
        # Objeto suelto (fuera de la sesión): solo se leen sus atributos.
        backup = HistorialBackup(**dict(zip(names, row[3:], strict=True)))
        if row[1]:
            heads.full = backup
        if row[2]:
            heads.chain = backup
    return heads


@dataclass
class RetentionResult:
    eliminados: list[HistorialBackup] = field(default_factory=list)
    bytes_liberados: int = 0
    temporales_borrados: list[str] = field(default_factory=list)
    conservados_por_dependencia: list[int] = field(default_factory=list)


# Añade la notificación de un evento a la sesión del servicio; quien la llama confirma.
Notifier = Callable[[Session, Evento, HistorialBackup, str | None], None]


@dataclass
class Descarga:
    """Un backup listo para enviarse: el archivo abierto y verificado, y su nombre."""

    archivo: VerifiedFile
    nombre_archivo: str
    id_backup: int


@dataclass
class BackupIniciado:
    """Un backup con su fila EN_PROCESO confirmada y el cerrojo tomado.

    `finish()` escribe el archivo y suelta el cerrojo pase lo que pase; hay que llamarlo siempre
    (o `abandon()` si ya no se va a ejecutar).
    """

    service: BackupService
    lock: psycopg.Connection
    session: Session
    row: HistorialBackup
    decision: Decision
    # Corte de cambios y si había sesiones ocultas (`pg_esquema.changes_cutoff`), leído con el INSERT.
    cutoff: tuple[datetime, bool]

    @property
    def id_backup(self) -> int:
        return self.row.id_backup

    # El cerrojo ya se soltó (junto con el COMMIT final, ver `BackupService._complete_direct`).
    released: bool = False

    def finish(self) -> HistorialBackup:
        try:
            return self.service._finish(self)
        finally:
            self._release()

    def abandon(self, reason: str) -> None:
        try:
            self.service._mark_error(self.session, self.row, reason)
        finally:
            self._release()

    def _release(self) -> None:
        self.session.close()
        if not self.released:
            self.service._unlock(self.lock)


class BackupService:
    """La única puerta a los backups para la API, la consola y los jobs."""

    def __init__(self, runtime: Runtime, notifier: Notifier | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.notifier = notifier
        self._background: set[threading.Thread] = set()
        self._background_lock = threading.Lock()
        # Conexión del cerrojo → su entrada del pool de SQLAlchemy (ver `_lock`).
        self._pooled: dict[int, PoolProxiedConnection] = {}
        self._repo: BackupRepo | None = None

    # ------------------------------------------------------------------ utilidades
    @property
    def repo(self) -> BackupRepo:
        # Se lee BACKUP_PATH cada vez: el servicio vive lo que la aplicación y la configuración manda,
        # y un enlace simbólico re-apuntado (p. ej. a un disco nuevo) vale desde el backup siguiente.
        directory = self.settings.backup_dir
        if self._repo is None or self._repo.directory != directory:
            self._repo = BackupRepo(directory)
        return self._repo

    @property
    def directory(self) -> Path:
        return self.repo.directory

    @property
    def _schema_seen(self) -> _SeenCatalog | None:
        """El catálogo que vio la última instantánea de un backup en esta base y este proceso (ver
        `_snapshot`). Es de la base (el motor), no de esta instancia: el job `backup_incremental`
        crea un servicio en cada corrida y, guardado en la instancia, en producción nunca se usaba."""
        return _SCHEMA_SEEN.get(self.runtime.engine)

    @_schema_seen.setter
    def _schema_seen(self, value: _SeenCatalog | None) -> None:
        if value is None:
            _SCHEMA_SEEN.pop(self.runtime.engine, None)
        else:
            _SCHEMA_SEEN[self.runtime.engine] = value

    def _unlock(self, lock: psycopg.Connection, released: bool | None = None) -> None:
        """Suelta el cerrojo y devuelve su conexión al pool (o la cierra si algo falló).
        `released`: el resultado de un `pg_advisory_unlock` ya enviado (ver `_complete_direct`)."""
        pooled = self._pooled.pop(id(lock), None)
        # Soltar explícitamente: al cerrar, el servidor lo libera un instante después y un
        # backup pedido justo entonces recibiría un falso "backup en curso".
        try:
            if released is None:
                row = lock.execute("SELECT pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,)).fetchone()
                released = bool(row and row[0])
            if pooled is None or not released:
                raise psycopg.OperationalError("cerrojo no soltado")
            lock.autocommit = False
            pooled.close()  # de vuelta al pool, sin el cerrojo
        except Exception:
            # Cerrar la conexión suelta el cerrojo: que no vuelva al pool con él tomado.
            if pooled is not None:
                pooled.invalidate()
            else:
                lock.close()

    def _lock(self) -> psycopg.Connection:
        return self._acquire(with_heads=False)[0]

    def _acquire(self, with_heads: bool) -> tuple[psycopg.Connection, CatalogHeads | None]:
        """El cerrojo consultivo, en una conexión del pool en autocommit: ya abierta y con las cachés
        de catálogo llenas (abrir una por backup costaba más que un incremental pequeño entero).
        Esa misma conexión decide el tipo y toma la instantánea del backup. Con `with_heads`,
        también `_heads`, leído en la misma ida y vuelta."""
        pooled = self.runtime.engine.raw_connection()
        heads = None
        try:
            conn = pooled.driver_connection
            assert isinstance(conn, psycopg.Connection)
            conn.rollback()  # el ping del pool pudo dejar una transacción abierta
            conn.autocommit = True
            with conn.pipeline():
                locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
                catalog = conn.execute(*_heads_query()) if with_heads else None
            row = locked.fetchone()
            if catalog is not None and row and row[0]:
                heads = _parse_heads(catalog.fetchall())
        except BaseException:
            pooled.invalidate()
            raise
        self._pooled[id(conn)] = pooled
        if not row or not row[0]:
            self._unlock(conn)
            raise BackupEnCurso()
        return conn, heads

    def _notify(
        self, session: Session, event: Evento, row: HistorialBackup, detail: str | None = None
    ) -> None:
        """Añade la notificación del evento y confirma la sesión del servicio (nunca una ajena) con
        ella: el cambio de estado que la causó viaja en la misma transacción, así quien ve el
        backup COMPLETADO o en ERROR ve también su aviso. Si la notificación falla se deshace solo
        ella (SAVEPOINT) y el cambio de estado se confirma igual."""
        if self.notifier is not None:
            try:
                with session.begin_nested():
                    self.notifier(session, event, row, detail)
            except Exception:
                log.exception("No se pudo registrar la notificación del backup %s", row.id_backup)
        session.commit()

    # ------------------------------------------------------------------ ejecutar
    def decide(
        self,
        session: Session,
        requested: TipoSolicitado | TipoBackup | str,
        now: datetime | None = None,
        conn: psycopg.Connection | None = None,
        heads: CatalogHeads | None = None,
    ) -> Decision:
        """El tipo que se hará y sobre qué backup. `conn`: una conexión ya abierta (la del cerrojo).

        DIFERENCIAL: sobre el último completo. INCREMENTAL: sobre el último backup COMPLETADO de la
        cadena de ese completo (completo, diferencial o incremental). Si la cadena no sirve
        (archivo ausente, esquema cambiado, TRUNCATE, base restaurada a un punto anterior) se hace
        un COMPLETO y la nota dice por qué. `heads`: el catálogo ya leído con `_heads` (sin ORM).
        """
        full_type = TipoBackup.COMPLETO
        tipo = self._nominal_type(requested, now)
        if tipo == full_type:
            return Decision(full_type)
        word = tipo.lower()
        if heads is not None:
            full, chain = heads.full, heads.chain
        else:
            full = self._newest(session, [full_type])
            chain = None if full is None else self._newest(session, list(TipoBackup), full.id_backup)
        if full is None:
            return Decision(
                full_type, nota=f"No hay un backup completo utilizable: el {word} se hizo COMPLETO"
            )
        base = full if tipo == TipoBackup.DIFERENCIAL else chain
        assert base is not None
        base_manifest = self.repo.manifest(base.nombre_archivo) if self.repo.usable(base) else None
        if base_manifest is None or base_manifest.hash_md5 != base.hash_md5:
            return Decision(
                full_type,
                nota=f"El archivo del backup {base.id_backup} ({base.nombre_archivo}), base del {word}, no está "
                f"disponible: el {word} se hizo COMPLETO",
            )
        if tipo == TipoBackup.INCREMENTAL and (
            base_manifest.fecha_corte_siguiente is None or base_manifest.id_backup_completo != full.id_backup
        ):
            return Decision(
                full_type,
                nota=f"El backup {base.id_backup} ({base.nombre_archivo}) no puede preceder a un incremental "
                "(es anterior a los incrementales o de otra cadena): el incremental se hizo COMPLETO",
            )
        if tipo == TipoBackup.INCREMENTAL and (broken := self.repo.broken_chain(base_manifest)):
            # Un incremental sobre una cadena rota no se podría restaurar: ni él ni los siguientes.
            return Decision(
                full_type,
                nota=f"La cadena del backup {base.id_backup} ({base.nombre_archivo}) está rota: {broken}; "
                "el incremental se hizo COMPLETO",
            )
        since = base.fecha_corte if tipo == TipoBackup.DIFERENCIAL else base_manifest.fecha_corte_siguiente
        with nullcontext(conn) if conn is not None else self.runtime.server.connect() as conn:
            # Una consulta para todo lo que hay que mirar y la revisión de alembic, en una ida y
            # vuelta (si la base tenía alembic_version; si ya no, la consulta falla y se repite
            # por partes).
            try:
                with conn.pipeline():
                    checks = conn.execute(_decide_sql(), (since,))
                    alembic = (
                        conn.execute(pg_esquema.ALEMBIC_SQL) if base.revision_esquema is not None else None
                    )
                if alembic is None:
                    revision = pg_esquema.alembic_revision(conn)
                else:
                    found = alembic.fetchone()
                    revision = str(found[0]) if found else None
            except psycopg.errors.UndefinedTable:
                checks = conn.execute(_decide_sql(), (since,))
                revision = pg_esquema.alembic_revision(conn)
            row = checks.fetchone()
            assert row is not None
            current_fp, truncated = row[0], row[1]
            restored = row[2:6] if row[2] is not None else None
            sequence_names = set(row[6])
        if current_fp != base.huella_esquema or revision != base.revision_esquema:
            return Decision(
                full_type,
                nota=f"El esquema cambió desde el backup {base.id_backup} (migración {base.revision_esquema} → {revision}): el {word} se hizo COMPLETO",
            )
        if base_manifest.secuencias is not None and sequence_names != set(base_manifest.secuencias):
            # Un archivo fija todas las secuencias de su instantánea con setval: una creada o
            # borrada desde el backup base no restauraría sobre él.
            changed = sorted(sequence_names ^ set(base_manifest.secuencias))
            return Decision(
                full_type,
                nota=f"El esquema cambió desde el backup {base.id_backup} (secuencias creadas o borradas: "
                f"{', '.join(changed)}): el {word} se hizo COMPLETO",
            )
        reason = chain_break(tipo, base, base_manifest, full.id_backup, truncated, restored)
        if reason:
            return Decision(full_type, nota=f"{reason}: el {word} se hizo COMPLETO")
        return Decision(tipo, base=base, base_manifest=base_manifest)

    @staticmethod
    def _heads(conn: psycopg.Connection) -> CatalogHeads:
        """Lo que `start` necesita del catálogo, en una consulta en la conexión del cerrojo (sin
        ORM: con el ORM, cerrar interrumpidos y las dos de `_newest` eran un tercio del costo fijo
        de un incremental pequeño): si hay algún EN_PROCESO, el último completo y el último backup
        de su cadena (las mismas condiciones que `_newest`)."""
        return _parse_heads(conn.execute(*_heads_query()).fetchall())

    def _lock_with_heads(self) -> tuple[psycopg.Connection, CatalogHeads]:
        """`_lock` y `_heads` en una sola ida y vuelta (modo pipeline: la consulta del catálogo va
        detrás del intento de cerrojo; si no se obtiene, su resultado se descarta)."""
        conn, heads = self._acquire(with_heads=True)
        assert heads is not None
        return conn, heads

    def _insert_running(
        self, session: Session, conn: psycopg.Connection, kind: TipoBackup, **values: Any
    ) -> tuple[HistorialBackup, tuple[datetime, bool]]:
        """Reserva un nombre libre e inserta (y confirma: `conn` está en autocommit) la fila
        EN_PROCESO en la conexión del cerrojo, y la deja en `session` como persistente sin releerla
        (con el ORM eran BEGIN, INSERT, COMMIT y un SELECT para recargar la fila expirada). Devuelve
        también el corte de cambios del backup (`pg_esquema.changes_cutoff`), leído en la misma ida
        y vuelta, antes de la instantánea: el INSERT solo se hace si el nombre está libre en el
        catálogo, así que comprobar el nombre, insertar y leer el corte es una sola ida y vuelta."""
        names, query = _insert_sql(tuple(["nombre_archivo", "ruta_archivo", *values]))
        while True:
            name = backup_name(datetime.now(self.settings.tz), kind)
            if not self.repo.exists(name):
                params = {**values, "nombre_archivo": name, "ruta_archivo": str(self.repo.path(name))}
                with conn.pipeline():
                    inserted = conn.execute(query, params)
                    cut = conn.execute(pg_esquema.CUTOFF_SQL)
                found = inserted.fetchone()
                if found is not None:
                    break
            time.sleep(0.2)
        cutoff = pg_esquema.parse_cutoff(cut.fetchone(), HIDDEN_SESSIONS_MARGIN)
        row = HistorialBackup(**dict(zip(names, found, strict=True)))
        make_transient_to_detached(row)
        session.add(row)
        return row, cutoff

    @staticmethod
    def _newest(session: Session, tipos: list[TipoBackup], since: int = 0) -> HistorialBackup | None:
        """El backup COMPLETADO y no eliminado más nuevo de esos tipos, con id >= `since`."""
        return session.scalars(
            select(HistorialBackup)
            .where(
                HistorialBackup.tipo.in_(tipos),
                HistorialBackup.estado == EstadoBackup.COMPLETADO,
                HistorialBackup.eliminado.is_not(True),
                HistorialBackup.id_backup >= since,
            )
            .order_by(HistorialBackup.id_backup.desc())
            .limit(1)
        ).first()

    def _reserve_name(self, session: Session, tipo: str) -> str:
        """Nombre del plan (`backup_AAAAMMDD_HHMMSS_TIPO.sql.gz`) que no exista ya (en el catálogo ni
        en el disco). El camino normal lo hace `_insert_running` junto con el INSERT."""
        while True:
            name = backup_name(datetime.now(self.settings.tz), tipo)
            taken = bool(
                session.scalar(
                    select(func.count())
                    .select_from(HistorialBackup)
                    .where(HistorialBackup.nombre_archivo == name)
                )
            )
            if not taken and not self.repo.exists(name):
                return name
            time.sleep(0.2)

    def run(
        self,
        requested: TipoSolicitado | TipoBackup | str,
        ejecutado_por: str,
        *,
        skip_unchanged: bool = False,
    ) -> HistorialBackup:
        """Un backup de principio a fin (CLI, job, API con `esperar`). `skip_unchanged`: ver `start`."""
        return self.start(requested, ejecutado_por, skip_unchanged=skip_unchanged).finish()

    def running_type(self) -> TipoBackup | None:
        """El tipo del backup EN_PROCESO, si hay uno (el job diario espera a un incremental)."""
        with self.runtime.session_factory() as session:
            tipo = session.scalar(
                select(HistorialBackup.tipo)
                .where(HistorialBackup.estado == EstadoBackup.EN_PROCESO)
                .order_by(HistorialBackup.id_backup.desc())
                .limit(1)
            )
        return TipoBackup(tipo) if tipo else None

    def start_in_background(self, requested: TipoSolicitado | TipoBackup | str, ejecutado_por: str) -> int:
        """Empieza un backup (errores de inicio, como "en curso", se lanzan aquí) y lo termina en un
        hilo; devuelve el id del registro EN_PROCESO. `wait_background` espera a esos hilos."""
        started = self.start(requested, ejecutado_por)
        # Leído antes de lanzar el hilo: si el backup falla enseguida, su rollback expira la fila y
        # leer `started.id_backup` después usaría la sesión a la vez que el hilo.
        id_backup = started.id_backup

        def work() -> None:
            try:
                started.finish()
            except BackupError:
                pass  # ya registrado: fila ERROR, notificación y error.log
            except BaseException:
                log.exception("El backup %s falló en segundo plano", id_backup)
            finally:
                with self._background_lock:
                    self._background.discard(threading.current_thread())

        thread = threading.Thread(target=work, name=f"backup-{id_backup}", daemon=True)
        with self._background_lock:
            self._background.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._background_lock:
                self._background.discard(thread)
            started.abandon("No se pudo lanzar el backup en segundo plano")
            raise
        return id_backup

    def wait_background(self, timeout: float | None = None) -> bool:
        """Para el cierre del servicio: espera a los backups en segundo plano. True si no queda ninguno."""
        with self._background_lock:
            threads = list(self._background)
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)

    def start(
        self,
        requested: TipoSolicitado | TipoBackup | str,
        ejecutado_por: str,
        *,
        skip_unchanged: bool = False,
    ) -> BackupIniciado:
        """Toma el cerrojo, decide el tipo y confirma el registro EN_PROCESO; el archivo lo escribe `finish()`.

        Un fallo aquí (BACKUP_PATH inutilizable, catálogo ilegible) también queda registrado: fila en
        ERROR y notificación ROJA, como un fallo a mitad del backup. `skip_unchanged` (el job
        `backup_incremental`): si nada cambió desde el backup anterior, lanza `SinCambios` sin
        escribir nada, ni archivo ni fila.
        """
        try:
            lock, heads = self._lock_with_heads()
        except (psycopg.Error, SQLAlchemyError) as exc:
            log.error("Backup %s no iniciado: base de datos no disponible: %s", requested, exc)
            raise BackupError(
                f"No se pudo iniciar el backup {requested}: base de datos no disponible"
            ) from exc
        session = self.runtime.session_factory()
        try:
            self.repo.ensure()
            # Con el cerrojo en la mano, un EN_PROCESO es de alguien que murió (p. ej. una CLI con
            # kill -9): se cierra antes de empezar, con su aviso ROJO.
            if heads.interrupted:
                self._close_interrupted(session)
            decision = self.decide(session, requested, conn=lock, heads=heads)
            if skip_unchanged and decision.tipo == TipoBackup.INCREMENTAL:
                assert decision.base is not None and decision.base_manifest is not None
                if changes_since(lock, decision.base_manifest, pg_esquema.MACHINERY_TABLES) is None:
                    raise SinCambios(decision.base.id_backup, decision.base.nombre_archivo)
            row, cutoff = self._insert_running(
                session,
                lock,
                decision.tipo,
                tipo=decision.tipo.value,
                estado=EstadoBackup.EN_PROCESO.value,
                ejecutado_por=ejecutado_por,
                id_backup_base=decision.base.id_backup if decision.base else None,
                nota=decision.nota,
            )
        except SinCambios:
            session.close()
            self._unlock(lock)
            raise
        except Exception as exc:
            session.rollback()
            session.close()
            message = _describe(exc)
            tipo = self._nominal_type(requested)
            log.error("Backup %s no pudo empezar: %s", tipo, message)
            try:  # con el cerrojo aún tomado: nadie más reserva nombres mientras tanto
                failed = self._record_early_failure(tipo, ejecutado_por, message)
            finally:
                self._unlock(lock)
            raise backup_error(f"Error en backup {tipo}: {message}", exc, id_backup=failed) from exc
        if decision.nota:
            log.warning("Backup %s: %s", row.id_backup, decision.nota)
            self._notify(session, Evento.PROMOVIDO, row, str(self._nominal_type(requested)))
        return BackupIniciado(self, lock, session, row, decision, cutoff)

    def _nominal_type(
        self, requested: TipoSolicitado | TipoBackup | str, now: datetime | None = None
    ) -> TipoBackup:
        """AUTO → el tipo del día, con la misma regla que el job `backup_diario`."""
        if requested != TipoSolicitado.AUTO:
            return TipoBackup(requested)
        return backup_tipo(
            now or datetime.now(self.settings.tz), self.settings.BACKUP_FULL_DAY, self.settings.tz
        )

    def _record_early_failure(self, tipo: TipoBackup, ejecutado_por: str, message: str) -> int | None:
        """Fila ERROR (sin archivo) y notificación para un backup que no llegó a empezar."""
        try:
            with self.runtime.session_factory() as session:
                name = self._reserve_name(session, tipo)  # el nombre que habría tenido; sin archivo
                row = HistorialBackup(
                    tipo=tipo,
                    nombre_archivo=name,
                    ruta_archivo=str(self.repo.path(name)),
                    estado=EstadoBackup.ERROR,
                    mensaje_error=message[:4000],
                    ejecutado_por=ejecutado_por,
                )
                session.add(row)
                session.flush()  # el id, para la notificación que se confirma con la fila
                self._notify(session, Evento.ERROR, row)
                return row.id_backup
        except Exception:
            log.exception("No se pudo registrar el fallo del backup %s", tipo)
            return None

    def _finish(self, started: BackupIniciado) -> HistorialBackup:
        session, row = started.session, started.row
        try:
            self._produce(session, row, started.decision, started.lock, started.cutoff)
            if not self._complete_direct(started):
                session.merge(row)
                session.flush()
                self._notify(session, Evento.COMPLETADO, row)  # confirma COMPLETADO y su aviso juntos
        except Exception as exc:
            session.rollback()
            message = _describe(exc)
            log.error("Backup %s (%s) falló: %s", row.id_backup, row.tipo, message)
            self._mark_error(session, row, message)
            raise backup_error(
                f"Error en backup {row.tipo}: {message}", exc, id_backup=row.id_backup
            ) from exc
        log.info(
            "Backup %s %s completado: %s, %s, %.2f s",
            row.id_backup,
            row.tipo,
            row.nombre_archivo,
            row.tamanio_legible,
            row.duracion_segundos or 0,
        )
        self._copy_offsite(row.id_backup)
        return row

    def _complete_direct(self, started: BackupIniciado) -> bool:
        """Confirma la fila COMPLETADO y suelta el cerrojo en UNA ida y vuelta por la conexión del
        cerrojo (BEGIN, UPDATE, COMMIT y luego `pg_advisory_unlock`, en modo pipeline: el cerrojo
        se suelta después de confirmar), sin la sesión ORM (sacar otra conexión del pool con su
        ping, BEGIN, UPDATE, COMMIT: la mitad del costo fijo de un incremental chico). Solo si el
        evento no lleva notificación (un incremental, o sin `notifier`): si la lleva, False, y
        `_finish` confirma las dos juntas por el ORM, como siempre."""
        row, lock = started.row, started.lock
        if self.notifier is not None:
            scratch = Session()  # sin conexión: solo mira si el aviso añadiría algo
            try:
                self.notifier(scratch, Evento.COMPLETADO, row, None)
                if scratch.new:
                    return False
            except Exception:
                return False
            finally:
                scratch.close()
        names, query = _complete_sql()
        values = {n: (v.value if isinstance(v := getattr(row, n), StrEnum) else v) for n in names}
        values["_id"] = row.id_backup
        try:
            with lock.pipeline():
                lock.execute("BEGIN")
                updated = lock.execute(query, values)
                lock.execute("COMMIT")
                unlocked = lock.execute("SELECT pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))
        except BaseException:
            _rollback_if_open(lock)
            raise
        returned = updated.fetchone()
        if returned is None:
            raise BackupError(f"La fila del backup {row.id_backup} desapareció del catálogo")
        for name, value in zip(_RETURNED, returned, strict=True):
            set_committed_value(row, name, value)
        flag = unlocked.fetchone()
        started.released = True
        self._unlock(lock, released=bool(flag and flag[0]))
        return True

    def _copy_offsite(self, id_backup: int) -> None:
        """Con BACKUP_REMOTO: copia fuera del sitio en segundo plano. Nunca afecta al backup local."""
        self.offsite.after_backup(id_backup)

    def _mark_error(self, session: Session, row: HistorialBackup, message: str) -> None:
        try:
            session.execute(
                update(HistorialBackup)
                .where(HistorialBackup.id_backup == row.id_backup)
                .values(estado=EstadoBackup.ERROR, mensaje_error=message[:4000])
            )
            session.refresh(row)
            self._notify(session, Evento.ERROR, row)  # confirma ERROR y su aviso juntos
        except Exception:
            log.exception("No se pudo marcar el backup %s como ERROR", row.id_backup)

    def _snapshot(
        self,
        snap: psycopg.Connection,
        full: bool,
        corte: datetime,
        base_manifest: Manifiesto | None,
        speculate: bool,
    ) -> _Snapshot:
        """Abre la instantánea y lee de ella lo que el backup necesita antes de escribir: sus datos
        (instante, versión, huella, xid), el catálogo de tablas, las secuencias, la revisión de
        alembic y las claves cambiadas.

        Las tres últimas dependen del catálogo. Con `speculate`, se piden en la MISMA ida y vuelta
        que el catálogo, compuestas con el catálogo que vio el backup anterior de este servicio;
        si el catálogo leído en la instantánea no es idéntico, se descartan y se piden otra vez con
        el verdadero (en la misma instantánea). Nada de lo que se usa viene de una caché: solo se
        ahorra esperar al servidor cuando el esquema no cambió (casi siempre)."""
        seen = self._schema_seen if speculate and not full else None
        with snap.pipeline():
            snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # La instantánea se exporta solo para pg_dump y el conteo paralelo del completo.
            facts = snap.execute(_facts_sql(full))
            catalog = snap.execute(pg_esquema.TABLES_SQL, pg_esquema.TABLES_PARAMS)
            sequence_names = snap.execute(pg_esquema.SEQUENCE_NAMES_SQL)
            chain = None if full else snap.execute(_chain_sql(), (corte,))
            early = self._dependent(snap, full, corte, base_manifest, *seen) if seen else None
        snapshot_id, taken_at, version, fingerprint, xid_text, xids_text, has_alembic = facts.fetchone()  # type: ignore[misc]  # un SELECT de una fila siempre da una fila
        catalog_rows = catalog.fetchall()
        names = [r[0] for r in sequence_names.fetchall()]
        current = (catalog_rows, names, bool(has_alembic))
        if early is not None and seen == current:
            dependent = early
        else:
            with snap.pipeline():
                dependent = self._dependent(snap, full, corte, base_manifest, *current)
        self._schema_seen = current
        ordered = pg_esquema.parse_tables(catalog_rows)
        alembic, sequence_values, changed = dependent
        alembic_row = alembic.fetchone() if alembic else None
        chain_row = chain.fetchone() if chain else None
        return _Snapshot(
            snapshot_id=snapshot_id,
            taken_at=taken_at,
            version=version,
            fingerprint=fingerprint,
            # El siguiente xid y los xid en curso de la instantánea: una versión de fila con `xmin`
            # >= ese xid o entre los en curso no era visible en ella (ver `changes_since`).
            xid_next=int(xid_text),
            xids_running=[int(x) for x in xids_text],
            ordered=ordered,
            revision=str(alembic_row[0]) if alembic_row else None,
            # Leídas una vez: lo que el archivo fija es lo que el manifiesto anota.
            sequences=pg_esquema.parse_sequences(names, sequence_values.fetchall())
            if sequence_values
            else [],
            changes=parse_changed_keys(ordered, changed.fetchall()) if changed else {},
            truncated=chain_row[0] if chain_row else None,
            restored=tuple(chain_row[1:5]) if chain_row and chain_row[1] is not None else None,
        )

    @staticmethod
    def _dependent(
        snap: psycopg.Connection,
        full: bool,
        corte: datetime,
        base_manifest: Manifiesto | None,
        catalog_rows: list[tuple[Any, ...]],
        names: list[str],
        has_alembic: bool,
    ) -> tuple[psycopg.Cursor[Any] | None, psycopg.Cursor[Any] | None, psycopg.Cursor[Any] | None]:
        """Envía (en el pipeline abierto) la revisión, las secuencias y las claves cambiadas."""
        ordered = pg_esquema.parse_tables(catalog_rows)
        keys = None if base_manifest is None else changed_keys_query(ordered, corte, base_manifest)
        sequence_query = None if full else pg_esquema.sequence_values_sql(names)
        return (
            snap.execute(pg_esquema.ALEMBIC_SQL) if has_alembic else None,
            snap.execute(sequence_query) if sequence_query else None,
            snap.execute(keys[0], keys[1]) if keys else None,
        )

    def _produce(
        self,
        session: Session,
        row: HistorialBackup,
        decision: Decision,
        snap: psycopg.Connection,
        cutoff: tuple[datetime, bool],
    ) -> None:
        """Escribe el archivo y su manifiesto. `snap`: la conexión del cerrojo, que también toma la
        instantánea (una conexión menos que abrir por backup)."""
        started = time.perf_counter()
        tools = self.runtime.pg_tools()
        conninfo, env = self.runtime.server.libpq()
        writer = self.repo.writer(row.nombre_archivo, self.settings.BACKUP_GZIP_NIVEL)
        manifest_written: Path | None = None
        try:
            try:
                # Desde dónde leerá el backup siguiente: lo que una transacción abierta ahora
                # confirme después llevará sellos anteriores a la instantánea.
                # (Leído al insertar la fila EN_PROCESO, antes de la instantánea.)
                next_cutoff, hidden = cutoff
                full = decision.tipo == TipoBackup.COMPLETO
                base, base_manifest = decision.base, decision.base_manifest
                if full:
                    full_id, corte = row.id_backup, next_cutoff
                else:
                    assert base is not None and base_manifest is not None
                    if decision.tipo == TipoBackup.DIFERENCIAL:
                        full_id, corte = base.id_backup, base_manifest.fecha_corte
                    else:
                        assert base_manifest.fecha_corte_siguiente is not None
                        assert base_manifest.id_backup_completo is not None
                        full_id = base_manifest.id_backup_completo
                        corte = base_manifest.fecha_corte_siguiente
                try:
                    snapshot = self._snapshot(snap, full, corte, base_manifest, speculate=True)
                except psycopg.Error:
                    # Lo adelantado con el catálogo del backup anterior falló (p. ej. una tabla que
                    # ya no existe): otra instantánea, sin adelantar nada.
                    if snap.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        snap.execute("ROLLBACK")
                    self._schema_seen = None
                    snapshot = self._snapshot(snap, full, corte, base_manifest, speculate=False)
                snapshot_id, taken_at, version, fingerprint = (
                    snapshot.snapshot_id,
                    snapshot.taken_at,
                    snapshot.version,
                    snapshot.fingerprint,
                )
                xid_next, xids_running = snapshot.xid_next, snapshot.xids_running
                ordered, revision, changes = snapshot.ordered, snapshot.revision, snapshot.changes
                current_sequences = snapshot.sequences
                if not full:
                    assert base is not None
                    assert base_manifest is not None
                    if fingerprint != base.huella_esquema or (
                        base_manifest.secuencias is not None
                        and {name for name, *_ in current_sequences} != set(base_manifest.secuencias)
                    ):
                        raise DumpError(
                            f"El esquema cambió mientras empezaba el {row.tipo.lower()}; reintente"
                        )
                    reason = chain_break(
                        decision.tipo, base, base_manifest, full_id, snapshot.truncated, snapshot.restored
                    )
                    if reason:
                        # Confirmado entre `decide` y la instantánea: el archivo no lo vería.
                        raise DumpError(
                            f"{reason}, mientras empezaba el {row.tipo.lower()}: no se escribió; "
                            "el próximo backup será COMPLETO"
                        )
                comment = (
                    f"-- Inventario: backup {row.tipo} {row.nombre_archivo} (id {row.id_backup}); "
                    f"estado de la base al {taken_at.isoformat()}"
                )
                point = Point(row.id_backup, row.tipo, row.nombre_archivo, full_id)
                if full:
                    assert snapshot_id is not None  # exportada para el completo
                    result = write_full(
                        writer,
                        pg_dump=tools.path("pg_dump"),
                        conninfo=conninfo,
                        env=env,
                        connect=self.runtime.server.connect,
                        snapshot=snapshot_id,
                        table_names=[t.name for t in ordered],
                        comment=comment,
                        marker=marker_sql(snap, point, taken_at),
                        niceness=self.settings.BACKUP_PRIORIDAD,
                        idle=self.settings.BACKUP_CPU_OCIOSA,
                        freno_mb_s=self.settings.BACKUP_FRENO_MB_S,
                    )
                    current_sequences = pg_esquema.sequences(snap)
                else:
                    assert base is not None and base_manifest is not None
                    comment += (
                        f"\n-- Requiere el backup {base.tipo} {base.nombre_archivo} "
                        f"(id {base.id_backup}, md5 {base.hash_md5})"
                    )
                    result, tail_rows = write_changes(
                        writer,
                        snap,
                        ordered=ordered,
                        cutoff=corte,
                        base=base_manifest,
                        comment=comment,
                        check=state_check(
                            snap,
                            point=point,
                            base=base_manifest,
                            fingerprint=fingerprint,
                            audited=ordered,
                        ),
                        marker=marker_sql(snap, point, taken_at),
                        sequence_values=current_sequences,
                        changes=changes,
                        # Con los COPY, en la misma ida y vuelta: el estado reciente y el COMMIT.
                        tail=recent_state_tail(snap, ordered, next_cutoff),
                    )
                    recent_keys, recent_deletions = parse_recent_state_text(ordered, tail_rows)
                # El fsync de los datos corre mientras se confirma y se escribe el manifiesto.
                writer.finish(sync=False)
                data_synced = writer.sync_in_background()
                if full:
                    with snap.pipeline():
                        recent = snap.execute(*recent_state_query(ordered, next_cutoff))
                        snap.execute("COMMIT")
                    recent_keys, recent_deletions = parse_recent_state(ordered, recent.fetchall())
                for entry in result.tables:
                    entry.claves_recientes = recent_keys.get(entry.nombre)
            except BaseException:
                _rollback_if_open(snap)
                raise
            duration = round(time.perf_counter() - started, 3)
            nota = row.nota
            if hidden:
                extra = "Había sesiones de otros usuarios no visibles: el corte se adelantó 1 h por seguridad"
                nota = f"{nota}. {extra}" if nota else extra
            manifest = Manifiesto(
                id_backup=row.id_backup,
                tipo=TipoBackup(row.tipo),
                nombre_archivo=row.nombre_archivo,
                hash_md5=writer.md5,
                tamanio_bytes=writer.size,
                tamanio_sin_comprimir=writer.uncompressed,
                fecha_creacion=row.fecha_creacion,
                fecha_instantanea=taken_at,
                fecha_corte=corte,
                duracion_segundos=duration,
                ejecutado_por=row.ejecutado_por,
                revision_esquema=revision,
                huella_esquema=fingerprint,
                version_servidor=version,
                id_backup_base=decision.base.id_backup if decision.base else None,
                nombre_archivo_base=decision.base.nombre_archivo if decision.base else None,
                hash_md5_base=decision.base.hash_md5 if decision.base else None,
                tablas=result.tables,
                eliminaciones_recientes=recent_deletions,
                nota=nota,
                fecha_corte_siguiente=next_cutoff,
                id_backup_completo=full_id,
                secuencias={name: (value, called) for name, value, called in current_sequences},
                xid_siguiente=xid_next,
                xids_en_curso=xids_running,
            )
            # Manifiesto primero y datos después: un archivo final siempre tiene su manifiesto.
            manifest_written = manifest_path(writer.final)  # `discard` lo borra si no llegan los datos
            self.repo.publish(writer, manifest, data_synced)
        except BaseException:
            self.repo.discard(writer, manifest_written)
            raise
        apply_manifest(row, manifest)  # lo confirma `_finish`, con su notificación si la hay

    # ------------------------------------------------------------------ catálogo y recuperación
    def _close_interrupted(self, session: Session) -> list[int]:
        """Pasa a ERROR, con su notificación ROJA, cada backup EN_PROCESO. Solo con el cerrojo
        tomado: entonces nadie está haciendo un backup y cada EN_PROCESO es de un proceso que murió
        (el servidor suelta el cerrojo consultivo de una conexión caída)."""
        rows = list(
            session.scalars(
                select(HistorialBackup)
                .where(HistorialBackup.estado == EstadoBackup.EN_PROCESO)
                .order_by(HistorialBackup.id_backup)
                .with_for_update()
            )
        )
        if not rows:
            return []  # sin confirmar: la transacción (vacía) sigue con lo que haga quien llama
        for row in rows:
            row.estado = EstadoBackup.ERROR
            row.mensaje_error = (
                "Interrumpido: el proceso que lo hacía terminó antes de completarlo "
                "(p. ej. un kill -9, un corte de luz o un reinicio)"
            )
        session.commit()
        if rows:
            self.repo.sweep_temporaries()
            log.warning("Backups interrumpidos marcados como ERROR: %s", [r.id_backup for r in rows])
        for row in rows:
            self._notify(session, Evento.ERROR, row)
        return [r.id_backup for r in rows]

    def close_stale(self) -> list[int]:
        """Los EN_PROCESO cuyo cerrojo nadie tiene (para /health y quien consulte sin hacer un
        backup). Solo intenta el cerrojo si hay alguno: casi siempre es una consulta y nada más."""
        with self.runtime.session_factory() as session:
            pending = session.scalar(
                select(func.count()).where(HistorialBackup.estado == EstadoBackup.EN_PROCESO)
            )
        if not pending:
            return []
        try:
            lock = self._lock()
        except BackupEnCurso:
            return []  # hay un backup de verdad en marcha
        try:
            with self.runtime.session_factory() as session:
                return self._close_interrupted(session)
        finally:
            self._unlock(lock)

    def recover(self) -> dict[str, int]:
        """Al arrancar: cierra lo que un proceso muerto dejó a medias y sincroniza con el disco."""
        try:
            lock = self._lock()
        except BackupEnCurso:
            log.info("Hay un backup en curso en otra instancia; no se recupera nada ahora")
            return {"temporales": 0, "interrumpidos": 0, "sincronizados": 0}
        try:
            self.repo.ensure()
            temps = self.repo.sweep_temporaries()
            with self.runtime.session_factory() as session:
                synced = sync_catalog(session, self.repo)
                interrupted = self._close_interrupted(session)
            return {"temporales": len(temps), "interrumpidos": len(interrupted), "sincronizados": synced}
        finally:
            self._unlock(lock)

    # ------------------------------------------------------------------ retención
    def cleanup(self, now: datetime | None = None) -> RetentionResult:
        """Borra los backups más viejos que BACKUP_RETENTION_DAYS, salvo los que aún hacen falta.
        409 si hay un backup en curso; 503 si la base o el directorio no están disponibles."""
        try:
            return self._cleanup(now)
        except DomainError:
            raise
        except (SQLAlchemyError, psycopg.OperationalError):
            raise NoDisponible("Base de datos no disponible; no se pudo aplicar la retención") from None
        except OSError as exc:
            raise NoDisponible(
                f"El directorio de backups no está disponible: {exc.strerror or exc}"
            ) from None

    def _cleanup(self, now: datetime | None) -> RetentionResult:
        lock = self._lock()
        try:
            # Si BACKUP_PATH no está (p. ej. un disco sin montar), no dar por borrado lo que no se ve.
            self.repo.ensure()
            result = RetentionResult(temporales_borrados=self.repo.sweep_temporaries())
            with self.runtime.session_factory() as session:
                self._close_interrupted(session)
                sync_catalog(session, self.repo)
                current = now or session.scalar(select(func.now()))
                assert current is not None
                doomed, result.conservados_por_dependencia = self._retention_plan(session, current)
                for row in doomed:
                    result.bytes_liberados += self.repo.remove(row.nombre_archivo)
                if doomed:
                    session.execute(
                        update(HistorialBackup)
                        .where(HistorialBackup.id_backup.in_([r.id_backup for r in doomed]))
                        .values(eliminado=True, fecha_eliminacion=func.now())
                    )
                session.commit()
                for row in doomed:
                    session.refresh(row)
                result.eliminados = doomed
                if doomed:
                    log.info(
                        "Retención: %s backups eliminados (%s liberados)",
                        len(doomed),
                        human_size(result.bytes_liberados),
                    )
                    self._notify(
                        session,
                        Evento.LIMPIEZA,
                        doomed[-1],
                        f"Se eliminaron {len(doomed)} backups de más de {self.settings.BACKUP_RETENTION_DAYS} días "
                        f"(incrementales ya cubiertos: de más de {self.settings.BACKUP_INCREMENTAL_RETENTION_DAYS}) "
                        f"({human_size(result.bytes_liberados)} liberados): "
                        + ", ".join(r.nombre_archivo for r in doomed),
                    )
                return result
        finally:
            self._unlock(lock)

    def _retention_plan(self, session: Session, now: datetime) -> tuple[list[HistorialBackup], list[int]]:
        """(los que se eliminan, los viejos que se conservan porque un punto conservado los necesita).

        Se conserva directamente: todo backup más nuevo que BACKUP_RETENTION_DAYS, salvo los
        incrementales, que ya solo sirven para restaurar a un momento dado una vez que existe un
        diferencial o completo posterior: esos, BACKUP_INCREMENTAL_RETENTION_DAYS. Se conservan
        siempre el último completo, los incrementales posteriores al último completo o diferencial y
        el backup más reciente de cualquier tipo. Y, con cada conservado, toda su cadena (`id_backup_base` hasta el completo): la
        retención nunca rompe la cadena de un punto que queda.
        """
        limit = now - timedelta(days=self.settings.BACKUP_RETENTION_DAYS)
        incr_limit = now - timedelta(days=self.settings.BACKUP_INCREMENTAL_RETENTION_DAYS)
        rows = list(
            session.scalars(
                select(HistorialBackup)
                .where(
                    HistorialBackup.eliminado.is_not(True), HistorialBackup.estado != EstadoBackup.EN_PROCESO
                )
                .order_by(HistorialBackup.id_backup)
            )
        )
        done = [r for r in rows if r.estado == EstadoBackup.COMPLETADO]
        newest_full = max((r.id_backup for r in done if r.tipo == TipoBackup.COMPLETO), default=None)
        anchor = max((r.id_backup for r in done if r.tipo != TipoBackup.INCREMENTAL), default=0)

        def old(row: HistorialBackup) -> bool:
            if row.fecha_creacion is None:
                return False
            if row.tipo == TipoBackup.INCREMENTAL:
                return row.id_backup < anchor and row.fecha_creacion < incr_limit
            return row.fecha_creacion < limit

        by_id = {r.id_backup: r for r in done}
        # El punto más reciente (de cualquier tipo) se conserva siempre, aunque sea viejo: si los
        # backups se detuvieron más que la retención, limpiar no debe dejar la base sin su último estado.
        newest = max(by_id, default=None)
        direct = {r.id_backup for r in done if not old(r)} | ({newest} if newest is not None else set())
        needed: set[int] = set()
        for ident in direct:
            base = by_id[ident].id_backup_base
            while base is not None and base not in needed and base in by_id:
                needed.add(base)
                base = by_id[base].id_backup_base
        kept = direct | needed | ({newest_full} if newest_full is not None else set())
        doomed = [r for r in rows if old(r) and r.id_backup not in kept]
        held = sorted(i for i in needed - direct if old(by_id[i]))
        return doomed, held

    # ------------------------------------------------------------------ consultas
    def restore_points(self) -> list[Punto]:
        """Los puntos a los que se puede restaurar (cadena entera en el directorio), el más nuevo primero."""
        return [p for p in reversed(self.repo.points()) if not p.problema]

    def get(self, session: Session, id_backup: int) -> HistorialBackup:
        row = session.get(HistorialBackup, id_backup)
        if row is None:
            raise NoEncontrado(f"No existe el backup {id_backup}")
        return row

    def detail(self, session: Session, id_backup: int) -> dict[str, Any]:
        """Un backup con su completo base, sus diferenciales y si su archivo está en el disco."""
        row = self.get(session, id_backup)
        return {
            "backup": row,
            "base": session.get(HistorialBackup, row.id_backup_base) if row.id_backup_base else None,
            "diferenciales": (
                queries.diferenciales_de(session, row.id_backup) if row.tipo == TipoBackup.COMPLETO else []
            ),
            "archivo_disponible": self.repo.intact(row),
        }

    def detail_now(self, id_backup: int) -> dict[str, Any]:
        """`detail` en una sesión propia (tras un backup que pudo durar)."""
        with self.runtime.session_factory() as session:
            return self.detail(session, id_backup)

    def statistics(self, session: Session, next_run: Callable[[], datetime | None]) -> dict[str, Any]:
        """El JSON de `/estadisticas`: contadores del catálogo, retención y espacio en disco.
        `next_run`: la próxima corrida programada (se consulta solo si BACKUP_ENABLED)."""
        datos = queries.estadisticas(session)
        try:
            path = nearest_existing(self.directory)
            libre = shutil.disk_usage(path).free if path.is_dir() else None
        except OSError:
            libre = None
        datos.update(
            espacio_usado_legible=human_size(datos["espacio_usado_bytes"]),
            dias_retencion=self.settings.BACKUP_RETENTION_DAYS,
            backups_habilitados=self.settings.BACKUP_ENABLED,
            espacio_libre_bytes=libre,
            espacio_libre_legible=human_size(libre) if libre is not None else None,
            proxima_ejecucion=next_run() if self.settings.BACKUP_ENABLED else None,
            fuera_del_sitio=self.offsite.summary(session),
        )
        return datos

    # ------------------------------------------------------------------ fuera del sitio
    @property
    def offsite(self) -> RemotoService:
        from inventario.modules.remoto.service import RemotoService

        return RemotoService(self.runtime)

    def copy_offsite(self, id_backup: int, wait: bool = True) -> CopiaRemota | None:
        """Copia (o reintenta) un backup fuera del sitio. 409 sin BACKUP_REMOTO, 404, 409 si no está
        COMPLETADO, 502 si el remoto falla (queda en ERROR con aviso ROJO). Sin `wait`: en segundo
        plano, devuelve el estado actual."""
        remoto = self.offsite
        remoto.rclone()  # 409 si no está configurado, antes de mirar nada
        with self.runtime.session_factory() as session:
            row = self.get(session, id_backup)
            if row.estado != EstadoBackup.COMPLETADO or row.eliminado:
                motivo = "fue eliminado por la retención" if row.eliminado else f"su estado es {row.estado}"
                raise Conflicto(f"El backup {id_backup} no se puede copiar fuera del sitio: {motivo}")
        if wait:
            return remoto.copy(id_backup)
        remoto.after_backup(id_backup)
        from inventario.modules.remoto.model import CopiaRemota

        with self.runtime.session_factory() as session:
            return session.get(CopiaRemota, id_backup)

    def manifest_file(self, id_backup: int) -> tuple[str, bytes]:
        """(nombre, contenido) del manifiesto de un backup entregable (404/409/410, como la descarga)."""
        with self.runtime.session_factory() as session:
            row = self.get(session, id_backup)
        path = manifest_path(self.repo.deliverable(row))
        try:
            content = path.read_bytes()
            json.loads(content)
        except FileNotFoundError:
            raise Desaparecido(f"El manifiesto {path.name} ya no está en el directorio de backups") from None
        except (OSError, ValueError) as exc:
            raise Conflicto(f"No se pudo leer el manifiesto {path.name}: {exc}") from None
        return path.name, content

    # ------------------------------------------------------------------ entregar
    def open_download(self, id_backup: int) -> Descarga:
        """El archivo de un backup, abierto y con el MD5 comprobado (404/409/410/503). Usa una
        sesión propia y breve: la descarga puede durar y no retiene ninguna conexión."""
        with self.runtime.session_factory() as session:
            row = self.get(session, id_backup)
        archivo = self.repo.open_verified(row)
        log.info("Backup %s descargado (%s)", row.id_backup, row.nombre_archivo)
        return Descarga(archivo, row.nombre_archivo, row.id_backup)

    def send_email(self, id_backup: int, destino: str, enviado_por: str) -> dict[str, Any]:
        """Envía el archivo verificado como adjunto. 503 sin SMTP, 413 si supera
        EMAIL_ADJUNTO_MAX_MB, 502 si el servidor SMTP falla; los del archivo como `open_download`."""
        settings = self.settings
        with self.runtime.session_factory() as session:
            row = self.get(session, id_backup)
            mail.sender(settings)  # 503 si no está configurado, antes de leer nada
            self.repo.deliverable(row)
            limite = int(settings.EMAIL_ADJUNTO_MAX_MB * 1024 * 1024)
            if (row.tamanio_bytes or 0) > limite:
                raise DemasiadoGrande(
                    f"El backup {row.id_backup} pesa {row.tamanio_legible} y el límite para adjuntos es "
                    f"{settings.EMAIL_ADJUNTO_MAX_MB:g} MB (EMAIL_ADJUNTO_MAX_MB): descárguelo con "
                    f"GET /api/v1/backup/{row.id_backup}/descargar"
                )
            archivo = self.repo.open_verified(row)
            with archivo.fh:
                contenido = archivo.fh.read(limite + 1)
            base = session.get(HistorialBackup, row.id_backup_base) if row.id_backup_base else None
        message: EmailMessage = mail.build_message(settings, row, destino, contenido, archivo.md5_hex, base)
        mail.send(settings, message, destino)  # sin sesión abierta: puede tardar SMTP_TIMEOUT
        log.info(
            "Backup %s (%s) enviado por email a %s por %s",
            row.id_backup,
            row.nombre_archivo,
            destino,
            enviado_por,
        )
        return {
            "enviado": True,
            "id_backup": row.id_backup,
            "nombre_archivo": row.nombre_archivo,
            "email_destino": destino,
            "tamanio_bytes": len(contenido),
            "hash_md5": archivo.md5_hex,
            "servidor_smtp": mail.server_address(settings),
            "fecha_envio": datetime.now(settings.tz),
        }


def apply_manifest(row: HistorialBackup, manifest: Manifiesto) -> None:
    row.tipo = manifest.tipo
    row.nombre_archivo = manifest.nombre_archivo
    row.estado = EstadoBackup.COMPLETADO
    row.mensaje_error = None
    row.tamanio_bytes = manifest.tamanio_bytes
    row.tamanio_legible = human_size(manifest.tamanio_bytes)
    row.duracion_segundos = manifest.duracion_segundos
    row.tablas_respaldadas = len(manifest.tablas)
    row.registros_totales = manifest.registros_totales
    row.hash_md5 = manifest.hash_md5
    row.id_backup_base = manifest.id_backup_base
    row.fecha_instantanea = manifest.fecha_instantanea
    row.fecha_corte = manifest.fecha_corte
    row.revision_esquema = manifest.revision_esquema
    row.huella_esquema = manifest.huella_esquema
    row.nota = manifest.nota


def sync_catalog(session: Session, repo: BackupRepo) -> int:
    """Que `historial_backup` conozca cada archivo del disco (p. ej. tras restaurar una base)."""
    changed = 0
    session.execute(text(f"SET LOCAL {RESTORE_GUC} = 'on'"))  # conservar las fechas originales
    for link in repo.published():
        manifest = link.manifest
        row = session.get(HistorialBackup, manifest.id_backup)
        if row is not None and row.nombre_archivo != manifest.nombre_archivo:
            log.warning(
                "El backup %s del disco (%s) choca con el id de %s en el catálogo; no se sincroniza",
                manifest.id_backup,
                manifest.nombre_archivo,
                row.nombre_archivo,
            )
            continue
        if (
            row is not None
            and row.estado == EstadoBackup.COMPLETADO
            and row.hash_md5 == manifest.hash_md5
            and not row.eliminado
        ):
            continue
        if row is None:
            row = HistorialBackup(id_backup=manifest.id_backup)
            session.add(row)
        apply_manifest(row, manifest)
        row.ruta_archivo = str(link.path)
        row.fecha_creacion = manifest.fecha_creacion
        row.ejecutado_por = manifest.ejecutado_por
        row.eliminado = False
        row.fecha_eliminacion = None
        row.fecha_actualizacion = func.now()  # SQL: con el GUC activo el trigger no lo sella
        changed += 1
    session.flush()
    # La secuencia nunca retrocede: tras recuperar del remoto un punto anterior, va por delante de lo
    # que hay en disco (record_remote_copies) para que ningún backup nuevo repita un id del remoto.
    session.execute(
        text(
            "SELECT setval(seq, GREATEST(max(id_backup), coalesce(pg_sequence_last_value(seq), 0))) "
            "FROM historial_backup, "
            "(SELECT pg_get_serial_sequence('historial_backup', 'id_backup')::regclass AS seq) s "
            "GROUP BY seq HAVING max(id_backup) IS NOT NULL"
        )
    )
    session.commit()
    return changed
