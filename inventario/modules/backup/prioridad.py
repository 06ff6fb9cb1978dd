"""Bajar la prioridad de CPU (`nice`) del trabajo de un backup, para que no le quite CPU a la tienda.

Solo pesa cuando la CPU está ocupada: con la máquina libre, el backup va igual de rápido.

Además de `nice`, los procesos del backup (pg_dump y los de PostgreSQL que le sirven) pueden pasar a
la política SCHED_IDLE de Linux (`BACKUP_CPU_OCIOSA`, apagado por defecto: no se midió mejora sobre
nice 19, y un proceso de PostgreSQL desalojado con un lock interno tomado haría esperar a la tienda;
ver docs/benchmarks.md): solo usan CPU que nadie más quiere y el
núcleo los desaloja en cuanto despierta una tarea normal. Con nice 19 a secas, una tarea de la
tienda que despierta puede esperar a que el backup agote su turno. Los hilos de Python del backup
se quedan en `nice` (no SCHED_IDLE): si el núcleo dejara sin CPU a un hilo que tiene el GIL, el
servicio, que corre en el mismo proceso, esperaría con él.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

APP_NAME = "inventario-backup"  # application_name de las conexiones de pg_dump


def lower(pid: int, niceness: int, idle: bool = False) -> None:
    """`nice` de un proceso o de un hilo (en Linux cada hilo tiene el suyo) y, con `idle`, la política
    SCHED_IDLE (solo procesos aparte: ver arriba). Sin permiso, nada."""
    if niceness > 0:
        try:
            current = os.getpriority(os.PRIO_PROCESS, pid)
            os.setpriority(os.PRIO_PROCESS, pid, max(current, min(19, niceness)))
        except (OSError, AttributeError):
            pass
    if idle:
        try:
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, AttributeError):
            pass


def lower_this_thread(niceness: int) -> None:
    lower(threading.get_native_id(), niceness)


def server_is_local(host: str | None) -> bool:
    """El servidor corre en esta máquina (socket Unix o loopback): sus pids son de aquí."""
    if not host or host.startswith("/"):
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lower_backends(conn: psycopg.Connection, niceness: int, timeout: float = 2.0, idle: bool = False) -> int:
    """Baja la prioridad de los procesos del servidor que atienden a pg_dump (servidor local).

    pg_dump se conecta un instante después de lanzarse: se espera hasta `timeout` a verlo.
    """
    if (niceness <= 0 and not idle) or not server_is_local(conn.info.host):
        return 0
    deadline = time.monotonic() + timeout
    while True:
        pids = [
            int(r[0])
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (APP_NAME,),
            )
        ]
        # La conexión que pregunta también es del backup: esperar a ver además la de pg_dump.
        if len(pids) > 1 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    for pid in pids:
        lower(pid, niceness, idle)
    return len(pids)


BUSY_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active' "
    "AND pid <> pg_backend_pid() AND application_name NOT LIKE 'inventario-backup%%'"
)


class Freno:
    """Con la tienda ocupada, limita a `mb_per_s` lo que el backup lee de pg_dump (pg_dump espera
    con la tubería llena; su proceso de PostgreSQL, con el socket lleno). Con la tienda libre, sin
    límite. "Ocupada": alguna sesión de la base que no es del backup ejecutando una consulta en el
    último segundo (se mira cada 0.1 s en una conexión propia)."""

    def __init__(self, connect: Callable[..., psycopg.Connection], mb_per_s: float) -> None:
        self.rate = mb_per_s * 1024 * 1024
        self._busy_until = 0.0
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._bytes = 0
        self._thread = threading.Thread(target=self._watch, args=(connect,), name="backup-freno", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return time.monotonic() < self._busy_until

    def _watch(self, connect: Callable[..., psycopg.Connection]) -> None:
        try:
            with connect(application_name=APP_NAME + "-freno", autocommit=True) as conn:
                while not self._stop.wait(0.1):
                    row = conn.execute(BUSY_SQL).fetchone()
                    if row and row[0]:
                        self._busy_until = time.monotonic() + 1.0
        except Exception as exc:  # sin freno, el backup sigue: solo con su prioridad
            log.warning("El freno del backup no puede mirar la base: %s", exc)

    def throttle(self, n: int) -> None:
        """Tras leer `n` bytes: espera lo que haga falta para no pasar del ritmo mientras esté ocupada."""
        now = time.monotonic()
        if not self.busy:
            self._started, self._bytes = now, 0
            return
        self._bytes += n
        ahead = self._bytes / self.rate - (now - self._started)
        if ahead > 0:
            time.sleep(min(ahead, 1.0))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
