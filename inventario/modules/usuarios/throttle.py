"""Freno de intentos de login, por cliente y por cuenta+cliente (en memoria del proceso).

Un bloqueo por cuenta sola lo puede disparar cualquiera contra el administrador (cinco peticiones
sin login y la contraseña correcta deja de servir). Aquí un cliente que falla solo se frena a sí
mismo: `max_cuenta` fallos contra una cuenta desde una dirección pausan esa cuenta *para esa
dirección*; `max_cliente` fallos desde una dirección, contra cualesquiera cuentas (existan o no),
pausan esa dirección. Las cuentas que no existen cuentan igual que las que existen: la respuesta no
dice cuáles existen.

El estado vive en memoria del proceso y un reinicio lo borra (un atacante no puede reiniciarlo). Con
`serve --workers N` cada worker lleva el suyo (docs/seguridad.md). El número de entradas está acotado.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    failures: int = 0
    since: float = 0.0
    blocked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        max_account: int,
        max_client: int,
        seconds: float,
        *,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_account = max_account
        self.max_client = max_client
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, client: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("cliente", client), ("cuenta", username.casefold(), client)

    def blocked(self, username: str, client: str) -> bool:
        now = self.clock()
        with self._lock:
            return any(
                (entry := self._entries.get(key)) is not None and entry.blocked_until > now
                for key in self._keys(username, client)
            )

    def failure(self, username: str, client: str) -> None:
        now = self.clock()
        client_key, account_key = self._keys(username, client)
        with self._lock:
            for key, limit in ((client_key, self.max_client), (account_key, self.max_account)):
                entry = self._entries.get(key)
                if entry is None:
                    self._make_room(now)
                    entry = self._entries[key] = _Entry(since=now)
                elif now - entry.since > self.seconds:
                    # Fallos viejos (fuera de la ventana) ya no cuentan.
                    entry.failures, entry.since = 0, now
                entry.failures += 1
                if entry.failures >= limit:
                    entry.blocked_until = now + self.seconds
                    entry.failures, entry.since = 0, now

    def success(self, username: str, client: str) -> None:
        # Solo la cuenta+cliente: con una cuenta propia, un atacante no borraría su cuenta de fallos
        # contra otras cuentas entrando entre intento e intento.
        with self._lock:
            self._entries.pop(self._keys(username, client)[1], None)

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self.max_entries:
            return
        for key in [
            k for k, e in self._entries.items() if e.blocked_until <= now and now - e.since > self.seconds
        ]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:
            # Aún lleno (muchas direcciones a la vez): sale la entrada más antigua.
            del self._entries[next(iter(self._entries))]
