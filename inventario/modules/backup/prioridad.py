"""Bajar la prioridad de CPU (`nice`) del trabajo de un backup, para que no le quite CPU a la tienda.

Solo pesa cuando la CPU está ocupada: con la máquina libre, el backup va igual de rápido.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time

import psycopg

log = logging.getLogger(__name__)

APP_NAME = "inventario-backup"  # application_name de las conexiones de pg_dump


def lower(pid: int, niceness: int) -> None:
    """`nice` de un proceso o de un hilo (en Linux cada hilo tiene el suyo). Sin permiso, nada."""
    if niceness <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, max(current, min(19, niceness)))
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


def lower_backends(conn: psycopg.Connection, niceness: int, timeout: float = 2.0) -> int:
    """Baja la prioridad de los procesos del servidor que atienden a pg_dump (servidor local).

    pg_dump se conecta un instante después de lanzarse: se espera hasta `timeout` a verlo.
    """
    if niceness <= 0 or not server_is_local(conn.info.host):
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
        lower(pid, niceness)
    return len(pids)
