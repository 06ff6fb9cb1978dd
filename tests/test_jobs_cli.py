"""La consola real: `jobs`, `logs mantenimiento`, `alertas generar` y `scheduler` (solo, sin HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from inventario.config import Settings
from tests.conftest import run_cli


def ledger(engine: Engine) -> Sequence[Any]:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM ejecuciones_job ORDER BY id_ejecucion")).all()


@pytest.mark.lento
def test_ejecutar_a_mano_desde_la_consola(
    cli_env: dict[str, str], settings: Settings, engine: Engine
) -> None:
    logs = Path(settings.LOGS_PATH)
    logs.mkdir(parents=True, exist_ok=True)
    day = datetime.now(settings.tz).date() - timedelta(days=9)
    rotated = logs / f"app.log.{day.isoformat()}"
    rotated.write_text("viejo\n" * 100)
    old = time.time() - 9 * 86400
    os.utime(rotated, (old, old))

    r = run_cli(cli_env, "logs", "mantenimiento")
    assert r.returncode == 0, r.stderr
    assert "Job logs_maintenance (corrida 1): OK" in r.stdout and "1 archivo comprimido (" in r.stdout
    assert not rotated.exists() and Path(f"{rotated}.gz").exists()

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO productos (codigo, nombre) VALUES ('P1', 'Arroz 1 kg')"))
    r = run_cli(cli_env, "alertas", "generar")
    assert r.returncode == 0, r.stderr
    assert (
        "Job alertas_diarias (corrida 2): OK" in r.stdout and "1 alerta nueva: 0 lotes vencidos" in r.stdout
    )
    assert "1 producto sin stock (ROJO)" in r.stdout
    r = run_cli(cli_env, "jobs", "ejecutar", "alertas_diarias", "--usuario", "ana")
    assert r.returncode == 0 and "0 alertas nuevas" in r.stdout

    r = run_cli(cli_env, "jobs", "ejecutar", "no_existe")
    assert r.returncode == 1 and "No existe el job 'no_existe'" in r.stderr

    rows = ledger(engine)
    assert [(x.job_id, x.estado, x.manual, x.ejecutado_por) for x in rows] == [
        ("logs_maintenance", "OK", True, "MANUAL"),
        ("alertas_diarias", "OK", True, "MANUAL"),
        ("alertas_diarias", "OK", True, "ana"),
    ]
    r = run_cli(cli_env, "jobs", "listar")
    assert r.returncode == 0, r.stderr
    for job_id, hora in (
        ("backup_diario", "03:00"),
        ("logs_maintenance", "04:00"),
        ("alertas_diarias", "06:00"),
    ):
        assert f"{job_id}  (" in r.stdout and f"todos los días {hora} America/Mexico_City" in r.stdout
    assert "última: (nunca)" in r.stdout
    r = run_cli(cli_env, "jobs", "historial", "alertas_diarias")
    assert r.returncode == 0 and r.stdout.startswith("2 corridas de alertas_diarias.")
    r = run_cli(cli_env, "jobs", "historial", "logs_maintenance")
    assert r.returncode == 0 and r.stdout.startswith("1 corrida de logs_maintenance.")


def test_scheduler_solo_recupera_y_se_detiene_limpio(
    cli_env: dict[str, str], settings: Settings, engine: Engine
) -> None:
    # Horas de los tres jobs: la hora en punto actual, así la última programada está en la gracia.
    hour = str(datetime.now(settings.tz).hour)
    env = {**cli_env, "BACKUP_ENABLED": "false", "BACKUP_HOUR": hour, "LOGS_HOUR": hour, "ALERTAS_HOUR": hour}
    exe = Path(sys.executable).with_name("inventario")
    proc = subprocess.Popen(
        [str(exe), "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Planificador en marcha (instancia "), first + (
            proc.stderr.read() if proc.poll() is not None else ""
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = ledger(engine)
            if len(rows) == 4 and all(r.estado != "EN_CURSO" for r in rows):
                break
            time.sleep(0.2)
        assert {(r.job_id, r.estado, r.ejecutado_por) for r in rows} == {
            ("backup_diario", "OMITIDO", "RECUPERACION"),
            ("backup_incremental", "OMITIDO", "RECUPERACION"),  # también apagado por BACKUP_ENABLED
            ("logs_maintenance", "OK", "RECUPERACION"),
            ("alertas_diarias", "OK", "RECUPERACION"),
        }
        assert all(r.instancia.endswith(f":{proc.pid}") for r in rows)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("Planificador detenido.")
