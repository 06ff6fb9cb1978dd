"""Copias fuera del sitio de cada backup: copiar, reintentar, verificar, retención y estado.

Un fallo aquí nunca convierte un backup local bueno en ERROR: queda en `copia_remota` (ERROR, con el
motivo), se avisa en ROJO y se reintenta con espera creciente y en la siguiente corrida programada.
Sin BACKUP_REMOTO todo esto está apagado y el resto del servicio no cambia.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyrage import x25519
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from inventario.errors import Conflicto, Desaparecido, DomainError, NoDisponible, NoEncontrado
from inventario.modules.backup.model import EstadoBackup, HistorialBackup
from inventario.modules.notificaciones.model import Notificacion
from inventario.modules.remoto import transfer
from inventario.modules.remoto.cifrado import AGE_SUFFIX, parse_recipients
from inventario.modules.remoto.model import CopiaRemota, EstadoRemoto
from inventario.modules.remoto.rclone import Rclone

if TYPE_CHECKING:
    from inventario.config import Settings
    from inventario.runtime import Runtime

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
# Esperas entre reintentos de una copia en segundo plano; agotadas, la siguiente corrida programada
# (job backup_diario) la vuelve a intentar.
RETRY_DELAYS: Sequence[float] = (60, 300, 1800, 7200)
# Una copia a la vez por proceso: ancho de banda y disco temporal acotados.
_UPLOAD_LOCK = threading.Lock()
_BACKGROUND: set[threading.Thread] = set()
_BACKGROUND_LOCK = threading.Lock()
_GIVE_UP = threading.Event()


def wait_background(timeout: float | None = None, give_up_retries: bool = True) -> bool:
    """Espera a las copias en segundo plano; True si no queda ninguna.

    Con `give_up_retries` (la consola al terminar, el job, el cierre del servicio) cada copia termina
    su intento en curso y no espera al siguiente reintento: lo que falló queda en ERROR y lo
    reintenta la siguiente corrida programada (o `backup remoto subir --pendientes`)."""
    if give_up_retries:
        _GIVE_UP.set()
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with _BACKGROUND_LOCK:
                threads = list(_BACKGROUND)
            if not threads:
                return True
            for thread in threads:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(remaining)
            if deadline is not None and time.monotonic() >= deadline:
                with _BACKGROUND_LOCK:
                    return not any(t.is_alive() for t in _BACKGROUND)
    finally:
        if give_up_retries:
            _GIVE_UP.clear()


manifest_object_name = transfer.manifest_object_name


@dataclass
class RemoteRetention:
    eliminados: list[int] = field(default_factory=list)
    conservados_por_dependencia: list[int] = field(default_factory=list)


class RemotoService:
    """La puerta a las copias fuera del sitio (la usan BackupService, la API, la consola y los jobs)."""

    retry_delays: Sequence[float] = RETRY_DELAYS

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    # ------------------------------------------------------------------ configuración
    @property
    def configured(self) -> bool:
        return bool(self.settings.BACKUP_REMOTO)

    def rclone(self) -> Rclone:
        if not self.settings.BACKUP_REMOTO:
            # 409 y no 503: es el estado de la configuración, no una caída (como /notificaciones/probar).
            raise Conflicto("Las copias fuera del sitio no están configuradas (BACKUP_REMOTO vacío)")
        return Rclone(self.settings.BACKUP_REMOTO, self.settings.BACKUP_REMOTO_CONFIG)

    def recipients(self) -> list[x25519.Recipient] | None:
        value = self.settings.BACKUP_CIFRADO_DESTINATARIOS
        return parse_recipients(value) if value else None

    @property
    def directory(self) -> Path:
        return self.settings.backup_dir

    # ------------------------------------------------------------------ copiar
    def after_backup(self, id_backup: int) -> None:
        """Tras un backup COMPLETADO: PENDIENTE y copia en segundo plano. Nunca lanza."""
        if not self.configured:
            return
        try:
            with self.runtime.session_factory() as session:
                self._state(session, id_backup, EstadoRemoto.PENDIENTE)
                session.commit()
            self.copy_in_background(id_backup)
        except Exception:
            log.exception("No se pudo programar la copia fuera del sitio del backup %s", id_backup)

    def copy_in_background(self, id_backup: int) -> threading.Thread:
        def work() -> None:
            try:
                for attempt, delay in enumerate([0.0, *self.retry_delays]):
                    if delay and _GIVE_UP.wait(delay):
                        return  # alguien espera para terminar: el reintento queda para la próxima corrida
                    try:
                        self.copy(id_backup)
                        return
                    except (DomainError, OSError) as exc:
                        log.warning(
                            "Copia fuera del sitio del backup %s, intento %s: %s",
                            id_backup,
                            attempt + 1,
                            getattr(exc, "mensaje", exc),
                        )
                    except Exception:
                        log.exception("Copia fuera del sitio del backup %s", id_backup)
                        return
            finally:
                with _BACKGROUND_LOCK:
                    _BACKGROUND.discard(threading.current_thread())

        thread = threading.Thread(target=work, name=f"copia-remota-{id_backup}", daemon=True)
        with _BACKGROUND_LOCK:
            _BACKGROUND.add(thread)
        thread.start()
        return thread

    def copy(self, id_backup: int) -> CopiaRemota:
        """Copia (o vuelve a copiar) un backup y lo verifica; antes, los eslabones de su cadena que aún
        no están en el remoto (un diferencial o incremental sin su base allí no sirve para restaurar).

        Lanza el error (RemotoError, CifradoError, Conflicto...) tras dejarlo en el catálogo y avisar."""
        rclone = self.rclone()
        missing: list[int] = []  # la cadena que falta, del pedido hacia su completo
        with self.runtime.session_factory() as session:
            current: int | None = id_backup
            while current is not None and current not in missing:
                row = session.get(HistorialBackup, current)
                if row is None:
                    raise NoEncontrado(f"No existe el backup {current}")
                if row.estado != EstadoBackup.COMPLETADO or row.eliminado:
                    raise Conflicto(
                        f"El backup {current} no se puede copiar fuera del sitio: "
                        + (
                            "fue eliminado por la retención"
                            if row.eliminado
                            else f"su estado es {row.estado}"
                        )
                        + (
                            f" (y es un eslabón de la cadena de {id_backup}, que sin él no se podría "
                            "restaurar desde el remoto)"
                            if current != id_backup
                            else ""
                        )
                    )
                missing.append(current)
                current = row.id_backup_base
                if current is not None:
                    base_state = session.get(CopiaRemota, current)
                    if (
                        base_state is not None
                        and base_state.estado == EstadoRemoto.COPIADO
                        and not base_state.eliminado_remoto
                    ):
                        break  # de ahí hacia atrás ya está en el remoto (la retención remota no lo borró)
        state: CopiaRemota | None = None
        for link in reversed(missing):  # el completo (o el primer eslabón que falta) primero
            with _UPLOAD_LOCK:
                state = self._copy_one(rclone, link)
        assert state is not None
        return state

    def _copy_one(self, rclone: Rclone, id_backup: int) -> CopiaRemota:
        with self.runtime.session_factory() as session:
            row = session.get(HistorialBackup, id_backup)
            assert row is not None
            data_file = self.directory / row.nombre_archivo
            public = {
                "id_backup": row.id_backup,
                "tipo": row.tipo,
                "nombre_archivo": row.nombre_archivo,
                "fecha_creacion": row.fecha_creacion,
                "fecha_instantanea": row.fecha_instantanea,
                "id_backup_base": row.id_backup_base,
                "nombre_archivo_base": self._base_name(session, row),
            }
            expected = row.hash_md5
        try:
            manifest_json = (self.directory / (data_file.name + MANIFEST_SUFFIX)).read_bytes()
            descriptor = transfer.push(
                rclone,
                data_file,
                manifest_json,
                public,
                self.recipients(),
                self.directory / ".remoto",
                expected_md5=expected,
            )
        except (DomainError, OSError) as exc:
            message = getattr(exc, "mensaje", None) or _os_message(exc)
            self._record_error(id_backup, message)
            # Un archivo local que falta o no se lee no es un fallo del servidor: 410 y 503, en español.
            if isinstance(exc, FileNotFoundError):
                raise Desaparecido(
                    f"El backup {id_backup} ({data_file.name}) o su manifiesto ya no está en el directorio "
                    "de backups: no se puede copiar fuera del sitio."
                ) from None
            if isinstance(exc, OSError):
                raise NoDisponible(
                    f"No se pudo leer el backup {id_backup} ({data_file.name}) para copiarlo fuera del "
                    f"sitio: {message}"
                ) from None
            raise
        with self.runtime.session_factory() as session:
            previous = session.get(CopiaRemota, id_backup)
            recovered = previous is not None and previous.estado == EstadoRemoto.ERROR
            state = self._state(session, id_backup, EstadoRemoto.COPIADO)
            state.fecha_copia = func.now()
            state.destino = self.settings.BACKUP_REMOTO
            state.objeto = descriptor.datos.nombre
            state.cifrado = descriptor.cifrado
            state.tamanio_remoto = descriptor.datos.tamanio_bytes
            state.hash_remoto = descriptor.datos.md5
            state.sha256_remoto = descriptor.datos.sha256
            state.mensaje_error = None
            state.intentos = 0
            state.proximo_intento = None
            state.eliminado_remoto = False
            state.fecha_eliminacion_remota = None
            if recovered:
                session.add(
                    Notificacion(
                        tipo="BACKUP_REMOTO",
                        titulo=f"✅ Backup {id_backup} copiado fuera del sitio",
                        mensaje=f"{descriptor.datos.nombre} llegó a {self.settings.BACKUP_REMOTO} y se verificó.",
                        semaforo="VERDE",
                        referencia_tipo="BACKUP",
                        referencia_id=id_backup,
                    )
                )
            session.commit()
            session.refresh(state)
        log.info(
            "Backup %s copiado fuera del sitio: %s (%s bytes, MD5 %s)",
            id_backup,
            descriptor.datos.nombre,
            descriptor.datos.tamanio_bytes,
            descriptor.datos.md5,
        )
        return state

    @staticmethod
    def _base_name(session: Session, row: HistorialBackup) -> str | None:
        if row.id_backup_base is None:
            return None
        base = session.get(HistorialBackup, row.id_backup_base)
        return base.nombre_archivo if base else None

    def _state(self, session: Session, id_backup: int, estado: EstadoRemoto) -> CopiaRemota:
        state = session.get(CopiaRemota, id_backup)
        if state is None:
            state = CopiaRemota(id_backup=id_backup, estado=estado, intentos=0, eliminado_remoto=False)
            session.add(state)
        state.estado = estado
        state.fecha_estado = func.now()
        return state

    def _record_error(self, id_backup: int, message: str) -> None:
        log.error("Error al copiar el backup %s fuera del sitio: %s", id_backup, message)
        try:
            with self.runtime.session_factory() as session:
                previous = session.get(CopiaRemota, id_backup)
                first_failure = previous is None or previous.estado != EstadoRemoto.ERROR
                state = self._state(session, id_backup, EstadoRemoto.ERROR)
                state.intentos = (state.intentos or 0) + 1
                state.mensaje_error = message[:4000]
                delays = list(self.retry_delays)
                if state.intentos <= len(delays):
                    state.proximo_intento = func.now() + timedelta(seconds=delays[state.intentos - 1])
                else:
                    state.proximo_intento = None  # la siguiente corrida programada
                # Un aviso por fallo, no por reintento (el incidente BACKUP_REMOTO sigue abierto).
                if first_failure:
                    session.add(
                        Notificacion(
                            tipo="BACKUP_REMOTO",
                            titulo=f"❌ Error al copiar el backup {id_backup} fuera del sitio",
                            mensaje=(
                                f"{message} El backup local sigue siendo válido; la copia se reintentará "
                                "sola (y en la siguiente corrida programada)."
                            ),
                            semaforo="ROJO",
                            referencia_tipo="BACKUP",
                            referencia_id=id_backup,
                        )
                    )
                session.commit()
        except Exception:
            log.exception("No se pudo registrar el error de copia remota del backup %s", id_backup)

    # ------------------------------------------------------------------ pendientes
    def pending(self, session: Session) -> list[int]:
        """Lo que falta copiar, en orden: primero la cadena que hace falta para restaurar hoy (el
        completo más reciente y lo que depende de él), después el resto dentro de la retención remota,
        del más nuevo al más viejo."""
        limit = _db_now(session) - timedelta(days=self.settings.remoto_retention_days)
        rows = list(
            session.scalars(
                select(HistorialBackup)
                .outerjoin(CopiaRemota, CopiaRemota.id_backup == HistorialBackup.id_backup)
                .where(
                    HistorialBackup.estado == EstadoBackup.COMPLETADO,
                    HistorialBackup.eliminado.is_not(True),
                    (CopiaRemota.id_backup.is_(None)) | (CopiaRemota.estado != EstadoRemoto.COPIADO),
                )
                .order_by(HistorialBackup.id_backup)
            )
        )
        newest_full = session.scalar(
            select(func.max(HistorialBackup.id_backup)).where(
                HistorialBackup.tipo == "COMPLETO",
                HistorialBackup.estado == EstadoBackup.COMPLETADO,
                HistorialBackup.eliminado.is_not(True),
            )
        )
        chain = [r.id_backup for r in rows if newest_full is not None and r.id_backup >= newest_full]
        rest = [
            r.id_backup
            for r in reversed(rows)
            if r.id_backup not in chain and r.fecha_creacion is not None and r.fecha_creacion >= limit
        ]
        return chain + rest

    def copy_pending(self, ids: Iterable[int] | None = None) -> tuple[list[int], dict[int, str]]:
        """Copia lo pendiente (o `ids`); devuelve (copiados, {id: error})."""
        if ids is None:
            with self.runtime.session_factory() as session:
                ids = self.pending(session)
        done: list[int] = []
        failed: dict[int, str] = {}
        for id_backup in ids:
            try:
                self.copy(id_backup)
                done.append(id_backup)
            except (DomainError, OSError) as exc:
                failed[id_backup] = getattr(exc, "mensaje", None) or _os_message(exc)
        return done, failed

    # ------------------------------------------------------------------ retención remota
    def cleanup(self, now: datetime | None = None) -> RemoteRetention:
        """Borra del remoto las copias más viejas que BACKUP_REMOTO_RETENTION_DAYS, con la misma regla
        de cadenas que la local: nunca el completo más reciente copiado ni la copia más reciente de
        cualquier tipo, nunca un eslabón de la cadena de algo que se conserva. Solo toca los objetos que el catálogo dice que esta instalación subió."""
        result = RemoteRetention()
        if not self.configured:
            return result
        rclone = self.rclone()
        with self.runtime.session_factory() as session:
            limit = (now or _db_now(session)) - timedelta(days=self.settings.remoto_retention_days)
            copies = list(
                session.execute(
                    select(HistorialBackup, CopiaRemota)
                    .join(CopiaRemota, CopiaRemota.id_backup == HistorialBackup.id_backup)
                    .where(
                        CopiaRemota.estado == EstadoRemoto.COPIADO, CopiaRemota.eliminado_remoto.is_(False)
                    )
                    .order_by(HistorialBackup.id_backup)
                )
            )
            fulls = [h.id_backup for h, _ in copies if h.tipo == "COMPLETO"]
            newest_full = max(fulls) if fulls else None
            # Se conserva lo reciente y el completo más nuevo, y con cada uno TODA su cadena hasta su
            # completo (un incremental necesita cada eslabón anterior, no solo su base directa).
            base_of = {h.id_backup: h.id_backup_base for h, _ in copies}
            recent = {
                h.id_backup for h, _ in copies if h.fecha_creacion is not None and h.fecha_creacion >= limit
            }
            # La copia más reciente de cualquier tipo también: si las copias fallaron más días que la
            # retención remota, limpiar no debe dejar el remoto sin su último estado.
            if copies:
                recent.add(max(h.id_backup for h, _ in copies))
            needed = set(recent)
            for start in recent:
                link = base_of.get(start)
                while link is not None and link not in needed:
                    needed.add(link)
                    link = base_of.get(link)
            for row, state in copies:
                if row.fecha_creacion is None or row.fecha_creacion >= limit:
                    continue
                if row.id_backup in needed:
                    result.conservados_por_dependencia.append(row.id_backup)
                    continue
                if row.id_backup == newest_full:
                    continue
                cifrado = bool(state.cifrado)
                for name in (
                    row.nombre_archivo + transfer.DESCRIPTOR_SUFFIX,  # primero: deja de estar publicado
                    manifest_object_name(row.nombre_archivo, cifrado),
                    state.objeto or row.nombre_archivo + (AGE_SUFFIX if cifrado else ""),
                ):
                    rclone.delete(name)
                state.eliminado_remoto = True
                state.fecha_eliminacion_remota = func.now()
                session.commit()
                result.eliminados.append(row.id_backup)
        if result.eliminados:
            log.info("Retención remota: %s copias eliminadas: %s", len(result.eliminados), result.eliminados)
        return result

    # ------------------------------------------------------------------ estado
    def summary(self, session: Session) -> dict[str, Any]:
        """La sección `fuera_del_sitio` de /estadisticas (sin credenciales: solo remoto y ruta)."""
        if not self.configured:
            return {"configurado": False}
        counts = dict(
            session.execute(
                select(CopiaRemota.estado, func.count())
                .join(HistorialBackup, HistorialBackup.id_backup == CopiaRemota.id_backup)
                .where(HistorialBackup.eliminado.is_not(True), CopiaRemota.eliminado_remoto.is_(False))
                .group_by(CopiaRemota.estado)
            ).all()
        )
        # Lo que la próxima corrida copiaría (la cadena vigente y lo que está dentro de la retención
        # remota), sin contar lo que ya está en ERROR: eso va en `errores`.
        states = {
            r.id_backup: r.estado for r in session.execute(select(CopiaRemota.id_backup, CopiaRemota.estado))
        }
        pending = [i for i in self.pending(session) if states.get(i) != EstadoRemoto.ERROR]
        last = session.execute(
            select(CopiaRemota.id_backup, CopiaRemota.fecha_copia)
            .where(CopiaRemota.fecha_copia.is_not(None))
            .order_by(CopiaRemota.fecha_copia.desc())
            .limit(1)
        ).first()
        return {
            "configurado": True,
            "destino": self.settings.BACKUP_REMOTO,
            "cifrado": bool(self.settings.BACKUP_CIFRADO_DESTINATARIOS),
            "dias_retencion": self.settings.remoto_retention_days,
            "ultima_copia": last.fecha_copia if last else None,
            "id_ultima_copia": last.id_backup if last else None,
            "copiados": int(counts.get(EstadoRemoto.COPIADO, 0)),
            "pendientes": len(pending),
            "errores": int(counts.get(EstadoRemoto.ERROR, 0)),
        }

    def behind(self, session: Session) -> str | None:
        return offsite_lag(session, self.settings)


def offsite_lag(session: Session, settings: Settings) -> str | None:
    """Para /health: por qué las copias van atrasadas, o None si están al día (o apagadas)."""
    if not settings.BACKUP_REMOTO:
        return None
    newest = session.execute(
        select(HistorialBackup.id_backup, HistorialBackup.fecha_creacion, CopiaRemota.estado)
        .outerjoin(CopiaRemota, CopiaRemota.id_backup == HistorialBackup.id_backup)
        .where(HistorialBackup.estado == EstadoBackup.COMPLETADO, HistorialBackup.eliminado.is_not(True))
        .order_by(HistorialBackup.id_backup.desc())
        .limit(1)
    ).first()
    if newest is None or newest.estado == EstadoRemoto.COPIADO or newest.fecha_creacion is None:
        return None
    hours = (_db_now(session) - newest.fecha_creacion).total_seconds() / 3600
    if hours <= settings.BACKUP_REMOTO_MAX_HORAS:
        return None
    return (
        f"El backup {newest.id_backup} no llegó fuera del sitio en {hours:.0f} h "
        f"(BACKUP_REMOTO_MAX_HORAS={settings.BACKUP_REMOTO_MAX_HORAS:g})"
    )


def record_remote_copies(session: Session, found: Iterable[transfer.Descriptor], destino: str | None) -> int:
    """Tras restaurar desde el remoto: `copia_remota` COPIADO para cada backup del catálogo que está
    publicado en el remoto (mismo id y archivo), y la secuencia de ids más allá del mayor del remoto.
    Devuelve cuántos.

    Sin lo segundo, recuperar un punto anterior al último deja en el remoto ids mayores que los del
    catálogo restaurado: los backups nuevos los repetirían y en el remoto habría dos backups con el
    mismo id (de dos líneas temporales distintas)."""
    found = list(found)
    if found:
        session.execute(
            text(
                "SELECT setval(seq, GREATEST(:remoto, coalesce(pg_sequence_last_value(seq), 1), "
                "(SELECT coalesce(max(id_backup), 1) FROM historial_backup))) "
                "FROM (SELECT pg_get_serial_sequence('historial_backup', 'id_backup')::regclass AS seq) s"
            ),
            {"remoto": max(d.id_backup for d in found)},
        )
    count = 0
    for desc in found:
        row = session.get(HistorialBackup, desc.id_backup)
        if row is None or row.nombre_archivo != desc.nombre_archivo:
            continue
        state = session.get(CopiaRemota, desc.id_backup)
        if state is None:
            state = CopiaRemota(id_backup=desc.id_backup, intentos=0, eliminado_remoto=False)
            session.add(state)
        state.estado = EstadoRemoto.COPIADO
        state.fecha_estado = func.now()
        state.fecha_copia = state.fecha_copia or func.now()
        state.destino = destino
        state.objeto = desc.datos.nombre
        state.cifrado = desc.cifrado
        state.tamanio_remoto = desc.datos.tamanio_bytes
        state.hash_remoto = desc.datos.md5
        state.sha256_remoto = desc.datos.sha256
        state.mensaje_error = None
        state.proximo_intento = None
        state.eliminado_remoto = False
        state.fecha_eliminacion_remota = None
        count += 1
    session.flush()
    return count


def state_fields(state: CopiaRemota | None) -> dict[str, Any]:
    """Los campos `remoto_*` de un backup en la API (estado None: nunca se intentó copiar)."""
    if state is None:
        return {
            "remoto_estado": None,
            "remoto_fecha": None,
            "remoto_hash": None,
            "remoto_error": None,
            "remoto_objeto": None,
            "remoto_eliminado": False,
        }
    return {
        "remoto_estado": state.estado,
        "remoto_fecha": state.fecha_copia if state.estado == EstadoRemoto.COPIADO else state.fecha_estado,
        "remoto_hash": state.hash_remoto,
        "remoto_error": state.mensaje_error,
        "remoto_objeto": state.objeto,
        "remoto_eliminado": state.eliminado_remoto,
    }


def _db_now(session: Session) -> datetime:
    now: datetime = session.execute(select(func.now())).scalar_one()
    return now


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc.strerror or exc)
    return str(exc)
