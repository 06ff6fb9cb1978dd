"""Reglas de tiempo del planificador como funciones puras: nadie espera a las 3 AM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventario.config import Settings
from inventario.modules.backup.service import backup_tipo
from inventario.modules.planificador.schedule import (
    cron,
    describe,
    due_slot,
    interval_latest_slot,
    interval_next_slot,
    latest_slot,
    next_slot,
)

MX = ZoneInfo("America/Mexico_City")
GRACIA = timedelta(hours=12)


def mx(*args: int) -> datetime:
    return datetime(*args).replace(tzinfo=MX)  # type: ignore[arg-type]  # (año, mes, día, ...) enteros


def test_ultima_y_proxima_hora_programada() -> None:
    # Miércoles 2025-12-03
    assert latest_slot(mx(2025, 12, 3, 2, 59), 3, 0, MX) == mx(2025, 12, 2, 3, 0)
    assert latest_slot(mx(2025, 12, 3, 3, 0), 3, 0, MX) == mx(2025, 12, 3, 3, 0)  # justo a la hora: esa
    assert latest_slot(mx(2025, 12, 3, 23, 0), 3, 0, MX) == mx(2025, 12, 3, 3, 0)
    assert next_slot(mx(2025, 12, 3, 2, 59), 3, 0, MX) == mx(2025, 12, 3, 3, 0)
    assert next_slot(mx(2025, 12, 3, 3, 0), 3, 0, MX) == mx(2025, 12, 4, 3, 0)  # estrictamente después
    # `now` en otra zona: cuenta el instante, no el reloj de pared.
    now_utc = datetime(2025, 12, 3, 10, 0, tzinfo=UTC)  # 04:00 en México
    assert latest_slot(now_utc, 4, 0, MX) == mx(2025, 12, 3, 4, 0)
    assert next_slot(now_utc, 6, 0, MX) == mx(2025, 12, 3, 6, 0)
    with pytest.raises(ValueError):
        latest_slot(datetime(2025, 12, 3, 4, 0), 3, 0, MX)  # sin zona: error, no una suposición


def test_gracia_y_recuperacion_una_sola_vez() -> None:
    slot = mx(2025, 12, 3, 3, 0)
    assert due_slot(slot, 3, 0, MX, GRACIA) == slot
    assert due_slot(slot + timedelta(seconds=1), 3, 0, MX, GRACIA) == slot  # APScheduler dispara tarde
    assert due_slot(slot + GRACIA, 3, 0, MX, GRACIA) == slot  # el borde está dentro
    assert due_slot(slot + GRACIA + timedelta(seconds=1), 3, 0, MX, GRACIA) is None
    assert due_slot(slot - timedelta(seconds=1), 3, 0, MX, GRACIA) is None  # la de ayer ya venció
    # Tres días detenido y vuelve a las 05:00: una corrida (la de hoy), no una por día perdido.
    assert due_slot(mx(2025, 12, 6, 5, 0), 3, 0, MX, GRACIA) == mx(2025, 12, 6, 3, 0)
    # Vuelve a las 02:00: la última hora programada es la de ayer 03:00, 23 h atrás: fuera de gracia.
    assert due_slot(mx(2025, 12, 6, 2, 0), 3, 0, MX, GRACIA) is None
    # ...salvo con una gracia de un día entero.
    assert due_slot(mx(2025, 12, 6, 2, 0), 3, 0, MX, timedelta(days=1)) == mx(2025, 12, 5, 3, 0)


@pytest.mark.parametrize(
    ("slot", "full_day", "tipo"),
    [
        (mx(2025, 12, 1, 3, 0), 0, "COMPLETO"),  # lunes
        (mx(2025, 12, 2, 3, 0), 0, "DIFERENCIAL"),  # martes
        (mx(2025, 11, 30, 3, 0), 0, "DIFERENCIAL"),  # domingo
        (mx(2025, 12, 4, 3, 0), 3, "COMPLETO"),  # BACKUP_FULL_DAY=3: jueves
        (mx(2025, 12, 1, 3, 0), 3, "DIFERENCIAL"),
        # El lunes 00:30 en México todavía es... lunes; en UTC es lunes 06:30: mismo día.
        (datetime(2025, 12, 1, 6, 30, tzinfo=UTC), 0, "COMPLETO"),
        # Lunes 03:00 UTC es domingo 21:00 en México: cuenta el día local.
        (datetime(2025, 12, 1, 3, 0, tzinfo=UTC), 0, "DIFERENCIAL"),
    ],
)
def test_completo_el_lunes_diferencial_los_demas_dias(slot: datetime, full_day: int, tipo: str) -> None:
    assert backup_tipo(slot, full_day, MX) == tipo


def test_el_dia_es_el_de_la_hora_programada_no_el_de_la_ejecucion() -> None:
    # Servicio detenido el lunes a las 03:00; vuelve el lunes a las 09:00: recupera la del lunes.
    slot = due_slot(mx(2025, 12, 1, 9, 0), 3, 0, MX, GRACIA)
    assert slot == mx(2025, 12, 1, 3, 0) and backup_tipo(slot, 0, MX) == "COMPLETO"
    # Vuelve el lunes a las 01:00 (la última es la del domingo, dentro de la gracia de un día).
    slot = due_slot(mx(2025, 12, 1, 1, 0), 3, 0, MX, timedelta(days=1))
    assert slot == mx(2025, 11, 30, 3, 0) and backup_tipo(slot, 0, MX) == "DIFERENCIAL"


def test_cambio_de_horario() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    # 2025-03-30: de 02:00 se pasa a 03:00; las 02:30 no existen y se corren una hora.
    slot = latest_slot(datetime(2025, 3, 30, 12, 0, tzinfo=madrid), 2, 30, madrid)
    assert slot.astimezone(UTC) == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert slot <= datetime(2025, 3, 30, 12, 0, tzinfo=madrid)
    # 2025-10-26: las 02:30 ocurren dos veces; cuenta la primera. Un solo slot ese día.
    day = datetime(2025, 10, 26, 12, 0, tzinfo=madrid)
    assert latest_slot(day, 2, 30, madrid).astimezone(UTC) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert next_slot(latest_slot(day, 2, 30, madrid), 2, 30, madrid).date().isoformat() == "2025-10-27"


def test_textos_de_la_programacion() -> None:
    assert describe(3, 0, "America/Mexico_City") == "todos los días 03:00 America/Mexico_City"
    assert describe(6, 5, "America/Bogota") == "todos los días 06:05 America/Bogota"
    assert cron(3, 0) == "0 3 * * *"


@given(
    instante=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    minutos=st.sampled_from([1, 5, 7, 15, 45, 60, 90, 1440]),
    zona=st.sampled_from(["America/Mexico_City", "America/New_York", "Asia/Kathmandu", "Europe/Madrid"]),
)
def test_horas_de_un_job_cada_n_minutos(instante: datetime, minutos: int, zona: str) -> None:
    now = instante.astimezone(ZoneInfo(zona))
    last = interval_latest_slot(now, minutos)
    nxt = interval_next_slot(now, minutos)
    # La última no es posterior a `now`, la próxima sí, y entre ellas hay exactamente el intervalo
    # (también en los cambios de hora: se cuentan en tiempo real, no en hora local).
    assert last <= now < nxt and nxt - last == timedelta(minutes=minutos)
    assert int(last.timestamp()) % (minutos * 60) == 0
    # Todas las instancias, en cualquier zona, calculan la misma hora programada.
    assert interval_latest_slot(instante, minutos) == last
    assert interval_latest_slot(nxt, minutos) == nxt


def test_job_incremental_cada_15_min_y_apagado_con_0(settings: Settings) -> None:
    from inventario.modules.planificador.scheduler import _SlotTrigger
    from inventario.modules.planificador.service import JOBS, JobsService
    from inventario.runtime import Runtime

    rt = Runtime(settings, None, None, None, owns_server=False)  # type: ignore[arg-type]
    jobs = JobsService(rt)
    job = jobs.job("backup_incremental")
    now = datetime(2025, 12, 3, 10, 7, 30, tzinfo=ZoneInfo("America/Mexico_City"))
    assert jobs.latest_slot(job, now) == now.replace(minute=0, second=0)
    assert jobs.due_slot(job, now) == now.replace(minute=0, second=0)
    assert jobs.next_slot(job, now) == now.replace(minute=15, second=0)
    assert jobs.programacion(job) == "cada 15 minutos" and jobs.cron(job) == ("*/15 * * * *", "cada 15 min")
    trigger = _SlotTrigger(jobs, job)
    assert trigger.get_next_fire_time(None, now) == now.replace(minute=15, second=0)
    assert trigger.get_next_fire_time(now.replace(minute=15, second=0), now) == now.replace(
        minute=30, second=0
    )
    off = Runtime(
        settings.model_copy(update={"BACKUP_INCREMENTAL_MINUTOS": 0}),
        None,  # type: ignore[arg-type]  # la lista de jobs no toca la base
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        owns_server=False,
    )
    assert "backup_incremental" not in [j.job_id for j in JobsService(off).jobs]
    assert len(JobsService(off).jobs) == len(JOBS) - 1
