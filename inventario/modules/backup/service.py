"""BackupService: ejecutar, catalogar, recuperar y limpiar backups. Sin HTTP.

Un solo backup a la vez en todo el despliegue: cerrojo consultivo de PostgreSQL en una conexión
propia, que el servidor libera solo si el proceso muere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from inventario.archivos import human_size
from inventario.auditoria import RESTORE_GUC
from inventario.errors import Conflicto, DomainError, NoEncontrado
from inventario.modules.backup import catalog
from inventario.modules.backup.dump import DumpError, recent_state, write_diff, write_full
from inventario.modules.backup.files import (
    MANIFEST_SUFFIX,
    NAME_RE,
    TEMP_SUFFIX,
    AtomicGzipWriter,
    backup_name,
    iter_manifests,
    manifest_path,
    read_manifest,
    write_manifest,
)
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.schemas import Manifiesto, TipoSolicitado
from inventario.modules.jobs.schedule import backup_tipo
from inventario.runtime import Runtime

log = logging.getLogger(__name__)

BACKUP_LOCK_KEY = 7261_0001
# Sin permiso para ver todas las sesiones, el corte del diferencial retrocede este margen.
HIDDEN_SESSIONS_MARGIN = timedelta(hours=1)


class BackupEnCurso(Conflicto):
    def __init__(self) -> None:
        super().__init__(
            "Backup en curso: ya hay otro backup o limpieza ejecutándose; reintente cuando termine"
        )


class BackupError(DomainError):
    status = 503  # el servicio no pudo completar el backup; reintentar puede funcionar

    def __init__(self, mensaje: str, id_backup: int | None = None) -> None:
        super().__init__(mensaje)
        self.id_backup = id_backup  # la fila ERROR que lo documenta, si se pudo escribir


def _describe(exc: BaseException) -> str:
    return exc.mensaje if isinstance(exc, DomainError) else f"{exc.__class__.__name__}: {exc}"


@dataclass
class Decision:
    tipo: str
    base: HistorialBackup | None = None
    base_manifest: Manifiesto | None = None
    nota: str | None = None


@dataclass
class RetentionResult:
    eliminados: list[HistorialBackup] = field(default_factory=list)
    bytes_liberados: int = 0
    temporales_borrados: list[str] = field(default_factory=list)
    conservados_por_dependencia: list[int] = field(default_factory=list)


Notifier = Callable[[Session, str, HistorialBackup, str | None], None]


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

    @property
    def id_backup(self) -> int:
        return self.row.id_backup

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
        self.service._unlock(self.lock)


class BackupService:
    def __init__(self, runtime: Runtime, notifier: Notifier | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.notifier = notifier

    # ------------------------------------------------------------------ utilidades
    @property
    def directory(self) -> Path:
        return self.settings.backup_dir

    def _ensure_directory(self) -> None:
        # Solo quien escribe lo crea: una consulta o una descarga no deben crear directorios.
        self.directory.mkdir(parents=True, exist_ok=True)

    def _connect(self) -> psycopg.Connection:
        conninfo, env = self.runtime.server.libpq()
        return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), autocommit=True)

    @staticmethod
    def _unlock(lock: psycopg.Connection) -> None:
        # Soltar explícitamente: al cerrar, el servidor lo libera un instante después y un
        # backup pedido justo entonces recibiría un falso "backup en curso".
        try:
            lock.execute("SELECT pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))
        except psycopg.Error:
            pass
        finally:
            lock.close()

    def _lock(self) -> psycopg.Connection:
        conn = self._connect()
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,)).fetchone()
        if not row or not row[0]:
            conn.close()
            raise BackupEnCurso()
        return conn

    def file_path(self, nombre_archivo: str) -> Path:
        """Ruta en disco de un backup: siempre BACKUP_PATH + un nombre con el formato del plan."""
        if not NAME_RE.match(nombre_archivo):
            raise NoEncontrado(f"Nombre de backup inválido: {nombre_archivo!r}")
        return self.directory / nombre_archivo

    def _notify(self, session: Session, event: str, row: HistorialBackup, detail: str | None = None) -> None:
        if self.notifier is not None:
            try:
                self.notifier(session, event, row, detail)
            except Exception:
                log.exception("No se pudo registrar la notificación del backup %s", row.id_backup)

    # ------------------------------------------------------------------ ejecutar
    def decide(
        self,
        session: Session,
        requested: TipoSolicitado,
        now: datetime | None = None,
        conn: psycopg.Connection | None = None,
    ) -> Decision:
        """COMPLETO o DIFERENCIAL, y sobre qué completo. `conn`: una conexión ya abierta (la del cerrojo)."""
        if self._nominal_type(requested, now) == "COMPLETO":
            return Decision("COMPLETO")
        base = session.scalars(
            select(HistorialBackup)
            .where(
                HistorialBackup.tipo == "COMPLETO",
                HistorialBackup.estado == "COMPLETADO",
                HistorialBackup.eliminado.is_not(True),
            )
            .order_by(HistorialBackup.id_backup.desc())
            .limit(1)
        ).first()
        if base is None:
            return Decision(
                "COMPLETO", nota="No hay un backup completo utilizable: el diferencial se hizo COMPLETO"
            )
        path = self.directory / base.nombre_archivo
        base_manifest = None
        if path.exists() and path.stat().st_size == base.tamanio_bytes:
            try:
                base_manifest = read_manifest(manifest_path(path))
            except (OSError, ValueError):
                base_manifest = None
        if base_manifest is None or base_manifest.hash_md5 != base.hash_md5:
            return Decision(
                "COMPLETO",
                nota=f"El archivo del último completo ({base.nombre_archivo}) no está disponible: el diferencial se hizo COMPLETO",
            )
        with nullcontext(conn) if conn is not None else self._connect() as conn:
            current_fp = catalog.fingerprint(conn)
            revision = catalog.alembic_revision(conn)
            truncated = conn.execute(
                "SELECT string_agg(DISTINCT tabla, ', ') FROM public.registro_eliminaciones "
                "WHERE clave IS NULL AND fecha_actualizacion >= %s",
                (base.fecha_corte,),
            ).fetchone()
        if current_fp != base.huella_esquema or revision != base.revision_esquema:
            return Decision(
                "COMPLETO",
                nota=f"El esquema cambió desde el completo {base.id_backup} (migración {base.revision_esquema} → {revision}): el diferencial se hizo COMPLETO",
            )
        if truncated and truncated[0]:
            return Decision(
                "COMPLETO",
                nota=f"Se vaciaron tablas con TRUNCATE ({truncated[0]}) desde el completo {base.id_backup}: el diferencial se hizo COMPLETO",
            )
        return Decision("DIFERENCIAL", base=base, base_manifest=base_manifest)

    def _reserve_name(self, session: Session, tipo: str) -> str:
        """Nombre del plan (`backup_AAAAMMDD_HHMMSS_TIPO.sql.gz`) que no exista ya."""
        while True:
            name = backup_name(datetime.now(self.settings.tz), tipo)
            taken = session.scalar(
                select(func.count())
                .select_from(HistorialBackup)
                .where(HistorialBackup.nombre_archivo == name)
            )
            if not taken and not (self.directory / name).exists():
                return name
            time.sleep(0.2)

    def run(self, requested: TipoSolicitado, ejecutado_por: str) -> HistorialBackup:
        """Backup completo de principio a fin (CLI, job). La API usa `start()` para responder antes."""
        return self.start(requested, ejecutado_por).finish()

    def start(self, requested: TipoSolicitado, ejecutado_por: str) -> BackupIniciado:
        """Toma el cerrojo, decide el tipo y confirma el registro EN_PROCESO; el archivo lo escribe `finish()`.

        Un fallo aquí (BACKUP_PATH inutilizable, catálogo ilegible) también queda registrado: fila en
        ERROR y notificación ROJA, como un fallo a mitad del backup.
        """
        try:
            lock = self._lock()
        except psycopg.Error as exc:
            log.error("Backup %s no iniciado: base de datos no disponible: %s", requested, exc)
            raise BackupError(
                f"No se pudo iniciar el backup {requested}: base de datos no disponible"
            ) from exc
        session = self.runtime.session_factory()
        try:
            self._ensure_directory()
            decision = self.decide(session, requested, conn=lock)
            name = self._reserve_name(session, decision.tipo)
            row = HistorialBackup(
                tipo=decision.tipo,
                nombre_archivo=name,
                ruta_archivo=str(self.directory / name),
                estado="EN_PROCESO",
                ejecutado_por=ejecutado_por,
                id_backup_base=decision.base.id_backup if decision.base else None,
                nota=decision.nota,
            )
            session.add(row)
            session.commit()
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
            raise BackupError(f"Error en backup {tipo}: {message}", id_backup=failed) from exc
        if decision.nota:
            log.warning("Backup %s: %s", row.id_backup, decision.nota)
            self._notify(session, "PROMOVIDO", row)
        return BackupIniciado(self, lock, session, row, decision)

    def _nominal_type(self, requested: TipoSolicitado, now: datetime | None = None) -> str:
        """AUTO → el tipo del día, con la misma regla que el job `backup_diario`."""
        if requested != "AUTO":
            return requested
        return backup_tipo(
            now or datetime.now(self.settings.tz), self.settings.BACKUP_FULL_DAY, self.settings.tz
        )

    def _record_early_failure(self, tipo: str, ejecutado_por: str, message: str) -> int | None:
        """Fila ERROR (sin archivo) y notificación para un backup que no llegó a empezar."""
        try:
            with self.runtime.session_factory() as session:
                name = self._reserve_name(session, tipo)  # el nombre que habría tenido; sin archivo
                row = HistorialBackup(
                    tipo=tipo,
                    nombre_archivo=name,
                    ruta_archivo=str(self.directory / name),
                    estado="ERROR",
                    mensaje_error=message[:4000],
                    ejecutado_por=ejecutado_por,
                )
                session.add(row)
                session.commit()
                self._notify(session, "ERROR", row)
                return row.id_backup
        except Exception:
            log.exception("No se pudo registrar el fallo del backup %s", tipo)
            return None

    def _finish(self, started: BackupIniciado) -> HistorialBackup:
        session, row = started.session, started.row
        try:
            self._produce(session, row, started.decision)
        except Exception as exc:
            session.rollback()
            message = _describe(exc)
            log.error("Backup %s (%s) falló: %s", row.id_backup, row.tipo, message)
            self._mark_error(session, row, message)
            raise BackupError(f"Error en backup {row.tipo}: {message}", id_backup=row.id_backup) from exc
        log.info(
            "Backup %s %s completado: %s, %s, %.2f s",
            row.id_backup,
            row.tipo,
            row.nombre_archivo,
            row.tamanio_legible,
            row.duracion_segundos or 0,
        )
        self._notify(session, "COMPLETADO", row)
        self._copy_offsite(row.id_backup)
        return row

    def _copy_offsite(self, id_backup: int) -> None:
        """Con BACKUP_REMOTO: copia fuera del sitio en segundo plano. Nunca afecta al backup local."""
        from inventario.modules.remoto.service import RemotoService

        RemotoService(self.runtime).after_backup(id_backup)

    def _mark_error(self, session: Session, row: HistorialBackup, message: str) -> None:
        try:
            session.execute(
                update(HistorialBackup)
                .where(HistorialBackup.id_backup == row.id_backup)
                .values(estado="ERROR", mensaje_error=message[:4000])
            )
            session.commit()
            session.refresh(row)
            self._notify(session, "ERROR", row)
        except Exception:
            log.exception("No se pudo marcar el backup %s como ERROR", row.id_backup)

    def _produce(self, session: Session, row: HistorialBackup, decision: Decision) -> None:
        started = time.perf_counter()
        final = self.directory / row.nombre_archivo
        tools = self.runtime.pg_tools()
        conninfo, env = self.runtime.server.libpq()
        writer = AtomicGzipWriter(final, self.settings.BACKUP_GZIP_NIVEL)
        manifest_written: Path | None = None
        try:
            with self._connect() as snap:
                # El corte solo importa al completo: el diferencial usa el de su completo base.
                cutoff, hidden = (
                    catalog.changes_cutoff(snap, HIDDEN_SESSIONS_MARGIN)
                    if decision.tipo == "COMPLETO"
                    else (None, False)
                )
                snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot_id, taken_at, version = snap.execute(
                    "SELECT pg_export_snapshot(), clock_timestamp(), current_setting('server_version')"
                ).fetchone()  # type: ignore[misc]
                fingerprint = catalog.fingerprint(snap)
                revision = catalog.alembic_revision(snap)
                comment = (
                    f"-- Inventario: backup {row.tipo} {row.nombre_archivo} (id {row.id_backup}); "
                    f"estado de la base al {taken_at.isoformat()}"
                )
                recent_deletions: list[int] = []
                if decision.tipo == "COMPLETO":
                    names = [t.name for t in catalog.tables(snap)]
                    result = write_full(
                        writer,
                        pg_dump=tools.path("pg_dump"),
                        conninfo=conninfo,
                        env=env,
                        snapshot=snapshot_id,
                        table_names=names,
                        comment=comment,
                        niceness=self.settings.BACKUP_PRIORIDAD,
                    )
                    assert cutoff is not None
                    corte = cutoff
                    recent_keys, recent_deletions = recent_state(snap, cutoff)
                    for entry in result.tables:
                        entry.claves_recientes = recent_keys.get(entry.nombre)
                else:
                    base = decision.base
                    assert base is not None and base.fecha_corte is not None
                    if fingerprint != base.huella_esquema:
                        raise DumpError("El esquema cambió mientras empezaba el diferencial; reintente")
                    corte = base.fecha_corte
                    comment += f"\n-- Requiere el completo {base.nombre_archivo} (id {base.id_backup}, md5 {base.hash_md5})"
                    assert decision.base_manifest is not None
                    result = write_diff(
                        writer,
                        snap,
                        cutoff=corte,
                        fingerprint=fingerprint,
                        base=decision.base_manifest,
                        comment=comment,
                        snapshot=snapshot_id,
                        connect=self._connect,
                    )
                writer.finish()
                snap.execute("COMMIT")
            duration = round(time.perf_counter() - started, 3)
            nota = row.nota
            if hidden:
                extra = "Había sesiones de otros usuarios no visibles: el corte se adelantó 1 h por seguridad"
                nota = f"{nota}. {extra}" if nota else extra
            manifest = Manifiesto(
                id_backup=row.id_backup,
                tipo=row.tipo,  # type: ignore[arg-type]
                nombre_archivo=row.nombre_archivo,
                hash_md5=writer.md5,
                tamanio_bytes=writer.size,
                tamanio_sin_comprimir=writer.uncompressed,
                fecha_creacion=row.fecha_creacion,  # type: ignore[arg-type]
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
            )
            # Manifiesto primero y datos después: un archivo final siempre tiene su manifiesto.
            manifest_written = write_manifest(manifest, final)
            writer.commit()
        except BaseException:
            writer.abort()
            if manifest_written is not None and not final.exists():
                manifest_written.unlink(missing_ok=True)
            raise
        apply_manifest(row, manifest)
        session.merge(row)
        session.commit()

    # ------------------------------------------------------------------ catálogo y recuperación
    def recover(self) -> dict[str, int]:
        """Al arrancar: cierra lo que un proceso muerto dejó a medias y sincroniza con el disco."""
        try:
            lock = self._lock()
        except BackupEnCurso:
            log.info("Hay un backup en curso en otra instancia; no se recupera nada ahora")
            return {"temporales": 0, "interrumpidos": 0, "sincronizados": 0}
        try:
            self._ensure_directory()
            temps = self._remove_temp_files()
            with self.runtime.session_factory() as session:
                synced = self.sync_catalog(session)
                interrupted = (
                    session.execute(
                        update(HistorialBackup)
                        .where(HistorialBackup.estado == "EN_PROCESO")
                        .values(
                            estado="ERROR",
                            mensaje_error="Interrumpido: el proceso terminó antes de completar el backup",
                        )
                        .returning(HistorialBackup.id_backup)
                    )
                    .scalars()
                    .all()
                )
                session.commit()
            if interrupted:
                log.warning("Backups interrumpidos marcados como ERROR: %s", interrupted)
            return {"temporales": len(temps), "interrumpidos": len(interrupted), "sincronizados": synced}
        finally:
            self._unlock(lock)

    def _remove_temp_files(self) -> list[str]:
        removed = []
        for path in self.directory.glob(f"backup_*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
        # Un manifiesto sin su archivo describe algo que no llegó a publicarse (o ya se borró).
        for path in self.directory.glob(f"backup_*{MANIFEST_SUFFIX}"):
            data = path.with_name(path.name.removesuffix(MANIFEST_SUFFIX))
            if not data.exists():
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def sync_catalog(self, session: Session) -> int:
        return sync_catalog(session, self.directory)

    # ------------------------------------------------------------------ retención
    def cleanup(self, now: datetime | None = None) -> RetentionResult:
        """Borra los backups más viejos que BACKUP_RETENTION_DAYS, salvo los que aún hacen falta."""
        lock = self._lock()
        try:
            # Si BACKUP_PATH no está (p. ej. un disco sin montar), no dar por borrado lo que no se ve.
            self._ensure_directory()
            result = RetentionResult(temporales_borrados=self._remove_temp_files())
            with self.runtime.session_factory() as session:
                self.sync_catalog(session)
                limit = (now or session.scalar(select(func.now()))) - timedelta(
                    days=self.settings.BACKUP_RETENTION_DAYS
                )  # type: ignore[operator]
                alive = HistorialBackup.eliminado.is_not(True)
                newest_full = (
                    select(func.max(HistorialBackup.id_backup))
                    .where(HistorialBackup.tipo == "COMPLETO", HistorialBackup.estado == "COMPLETADO", alive)
                    .scalar_subquery()
                )
                kept_bases = select(HistorialBackup.id_backup_base).where(
                    HistorialBackup.tipo == "DIFERENCIAL",
                    HistorialBackup.estado == "COMPLETADO",
                    alive,
                    HistorialBackup.fecha_creacion >= limit,
                    HistorialBackup.id_backup_base.is_not(None),
                )
                old = (
                    (HistorialBackup.fecha_creacion < limit)
                    & alive
                    & (HistorialBackup.estado != "EN_PROCESO")
                )
                result.conservados_por_dependencia = list(
                    session.scalars(
                        select(HistorialBackup.id_backup).where(
                            old, HistorialBackup.id_backup.in_(kept_bases)
                        )
                    )
                )
                doomed = list(
                    session.scalars(
                        select(HistorialBackup)
                        .where(
                            old,
                            HistorialBackup.id_backup.is_distinct_from(newest_full),
                            HistorialBackup.id_backup.not_in(kept_bases),
                        )
                        .order_by(HistorialBackup.id_backup)
                    )
                )
                for row in doomed:
                    if NAME_RE.match(row.nombre_archivo):
                        path = self.directory / row.nombre_archivo
                        if path.exists():
                            result.bytes_liberados += path.stat().st_size
                        path.unlink(missing_ok=True)
                        manifest_path(path).unlink(missing_ok=True)
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
                        "LIMPIEZA",
                        doomed[-1],
                        f"Se eliminaron {len(doomed)} backups de más de {self.settings.BACKUP_RETENTION_DAYS} días "
                        f"({human_size(result.bytes_liberados)} liberados): "
                        + ", ".join(r.nombre_archivo for r in doomed),
                    )
                return result
        finally:
            self._unlock(lock)

    # ------------------------------------------------------------------ consultas
    def get(self, session: Session, id_backup: int) -> HistorialBackup:
        row = session.get(HistorialBackup, id_backup)
        if row is None:
            raise NoEncontrado(f"No existe el backup {id_backup}")
        return row


def apply_manifest(row: HistorialBackup, manifest: Manifiesto) -> None:
    row.tipo = manifest.tipo
    row.nombre_archivo = manifest.nombre_archivo
    row.estado = "COMPLETADO"
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


def sync_catalog(session: Session, directory: Path) -> int:
    """Que `historial_backup` conozca cada archivo del disco (p. ej. tras restaurar una base)."""
    changed = 0
    session.execute(text(f"SET LOCAL {RESTORE_GUC} = 'on'"))  # conservar las fechas originales
    for _, manifest in iter_manifests(directory):
        data = directory / manifest.nombre_archivo
        if not data.exists() or data.stat().st_size != manifest.tamanio_bytes:
            continue
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
            and row.estado == "COMPLETADO"
            and row.hash_md5 == manifest.hash_md5
            and not row.eliminado
        ):
            continue
        if row is None:
            row = HistorialBackup(id_backup=manifest.id_backup)
            session.add(row)
        apply_manifest(row, manifest)
        row.ruta_archivo = str(data)
        row.fecha_creacion = manifest.fecha_creacion
        row.ejecutado_por = manifest.ejecutado_por
        row.eliminado = False
        row.fecha_eliminacion = None
        row.fecha_actualizacion = func.now()  # con el GUC activo el trigger no lo sella
        changed += 1
    session.flush()
    session.execute(
        text(
            "SELECT setval(pg_get_serial_sequence('historial_backup', 'id_backup'), max(id_backup)) "
            "FROM historial_backup HAVING max(id_backup) IS NOT NULL"
        )
    )
    session.commit()
    return changed
