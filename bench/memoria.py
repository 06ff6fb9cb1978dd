"""RSS de un proceso y sus hijos (p. ej. el servicio y su pg_dump), muestreado desde /proc."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss(pid: int) -> int:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * PAGE


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS del proceso, RSS del proceso más todos sus descendientes), en bytes."""
    own = _rss(pid)
    total, pending = own, _children(pid)
    while pending:
        child = pending.pop()
        total += _rss(child)
        pending.extend(_children(child))
    return own, total


class Muestreo:
    """Máximos de RSS mientras dura el bloque `with`, cada `intervalo` segundos."""

    def __init__(self, pid: int, intervalo: float = 0.02) -> None:
        self.pid = pid
        self.intervalo = intervalo
        self.max_proceso = 0
        self.max_arbol = 0
        self.muestras = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            own, total = tree_rss(self.pid)
            self.max_proceso = max(self.max_proceso, own)
            self.max_arbol = max(self.max_arbol, total)
            self.muestras += 1
            time.sleep(self.intervalo)

    def __enter__(self) -> Muestreo:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
