"""Reglas de tiempo del planificador, como funciones puras de `now` (las pruebas no esperan a las 3 AM).

Cada job corre una vez al día a una hora local (`hora:minuto` en `ZONA_HORARIA`). Las claves del
registro de corridas salen siempre de aquí, nunca del reloj interno de APScheduler: todas las
instancias calculan la misma hora programada para el mismo día.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

DIAS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` debe llevar zona horaria")


def slot_on(day: date, hour: int, minute: int, tz: tzinfo) -> datetime:
    """La hora programada del día `day`. Una hora local inexistente (cambio al horario de verano)
    se corre hacia adelante lo que dura el salto; una repetida (fin del verano) es la primera."""
    local = datetime.combine(day, time(hour, minute), tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz)


def latest_slot(now: datetime, hour: int, minute: int, tz: tzinfo) -> datetime:
    """La hora programada más reciente que no es posterior a `now`."""
    _require_aware(now)
    today = now.astimezone(tz).date()
    slot = slot_on(today, hour, minute, tz)
    if slot > now:
        slot = slot_on(today - timedelta(days=1), hour, minute, tz)
    return slot


def next_slot(now: datetime, hour: int, minute: int, tz: tzinfo) -> datetime:
    """La próxima hora programada estrictamente posterior a `now`."""
    _require_aware(now)
    today = now.astimezone(tz).date()
    slot = slot_on(today, hour, minute, tz)
    if slot <= now:
        slot = slot_on(today + timedelta(days=1), hour, minute, tz)
    return slot


def due_slot(now: datetime, hour: int, minute: int, tz: tzinfo, grace: timedelta) -> datetime | None:
    """La hora programada que toca ejecutar en `now`, o None si la última ya pasó hace más que la
    gracia. Solo la última cuenta: tras varios días detenido se recupera una corrida, no una por día."""
    slot = latest_slot(now, hour, minute, tz)
    return slot if now - slot <= grace else None


def describe(hour: int, minute: int, zone: str) -> str:
    """La programación en palabras: `todos los días 03:00 America/Mexico_City`."""
    return f"todos los días {hour:02d}:{minute:02d} {zone}"


def cron(hour: int, minute: int) -> str:
    return f"{minute} {hour} * * *"


__all__ = ["DIAS", "cron", "describe", "due_slot", "latest_slot", "next_slot", "slot_on"]
