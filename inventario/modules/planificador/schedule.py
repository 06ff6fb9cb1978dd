"""Reglas de tiempo del planificador, como funciones puras de `now` (las pruebas no esperan a las 3 AM).

Cada job corre una vez al día a una hora local (`hora:minuto` en `ZONA_HORARIA`), o cada N minutos
(`backup_incremental`). Las claves del registro de corridas salen siempre de aquí, nunca del reloj
interno de APScheduler: todas las instancias calculan la misma hora programada.
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


def interval_latest_slot(now: datetime, minutes: int) -> datetime:
    """Jobs cada `minutes` minutos: horas programadas en múltiplos de `minutes` contados desde
    1970-01-01 UTC (con 15: :00, :15, :30 y :45), iguales en todas las instancias y sin saltos ni
    repeticiones en los cambios de hora. La más reciente que no es posterior a `now`."""
    _require_aware(now)
    step = minutes * 60
    epoch = int(now.timestamp()) // step * step
    return datetime.fromtimestamp(epoch, UTC).astimezone(now.tzinfo)


def interval_next_slot(now: datetime, minutes: int) -> datetime:
    """La próxima hora programada de un job cada `minutes` minutos, estrictamente posterior a `now`."""
    return interval_latest_slot(now, minutes) + timedelta(minutes=minutes)


def describe_interval(minutes: int) -> str:
    return f"cada {minutes} minutos"


def cron_interval(minutes: int) -> str:
    return f"*/{minutes} * * * *" if 60 % minutes == 0 else f"cada {minutes} min"


def describe(hour: int, minute: int, zone: str) -> str:
    """La programación en palabras: `todos los días 03:00 America/Mexico_City`."""
    return f"todos los días {hour:02d}:{minute:02d} {zone}"


def cron(hour: int, minute: int) -> str:
    return f"{minute} {hour} * * *"


__all__ = [
    "DIAS",
    "cron",
    "cron_interval",
    "describe",
    "describe_interval",
    "due_slot",
    "interval_latest_slot",
    "interval_next_slot",
    "latest_slot",
    "next_slot",
    "slot_on",
]
