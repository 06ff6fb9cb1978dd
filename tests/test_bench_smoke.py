"""El benchmark a escala mínima, para que no se pudra. Las cifras no se juzgan aquí."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lento

ROOT = Path(__file__).resolve().parent.parent


def test_bench_minimo_produce_todas_las_medidas(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--escala",
            "minima",
            "--repeticiones",
            "1",
            "--clientes",
            "4",
            "--peticiones",
            "60",
            "--segundos-carga",
            "20",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    numbers = [r["numero"] for r in data["resultados"]]
    assert numbers == [1, 2, 3, 4, 5, 8, 6, 7, 9, 10, 11, 12, 13, 14]
    for r in data["resultados"]:
        assert r["ratio"] is None or r["ratio"] > 0
    restore = next(r for r in data["resultados"] if r["numero"] == 3)
    assert restore["datos"]["mismos_datos"] is True
    latency = next(r for r in data["resultados"] if r["numero"] == 4)
    assert latency["datos"]["errores"] == 0
    memory = next(r for r in data["resultados"] if r["numero"] == 5)
    assert memory["datos"]["reposo_bytes"] > 0 and memory["datos"]["muestras"] > 0
    assert memory["datos"]["backup_pico_bytes"] >= memory["datos"]["backup_pico_solo_servicio_bytes"] > 0
    maintenance = next(r for r in data["resultados"] if r["numero"] == 6)
    assert maintenance["datos"]["logs"]["comprimidos"] > 0 and maintenance["datos"]["alertas"]["alertas"] > 0
    consola = next(r for r in data["resultados"] if r["numero"] == 8)
    assert set(consola["datos"]["servidor_ms"]) == {
        "panel",
        "backups",
        "tareas",
        "notificaciones",
        "inventario",
        "usuarios",
    }
    chain = next(r for r in data["resultados"] if r["numero"] == 11)
    assert chain["datos"]["mismos_datos"] is True
    incremental_load = next(r for r in data["resultados"] if r["numero"] == 12)
    assert incremental_load["datos"]["errores"] == 0 and incremental_load["datos"]["incrementales"] > 0
    workers = next(r for r in data["resultados"] if r["numero"] == 13)
    assert workers["datos"]["errores"] == 0
    assert all(f["peticiones_por_segundo"] > 0 for fases in workers["datos"]["fases"].values() for f in fases)
    assert "Duración total" in result.stdout
    linear = next(r for r in data["resultados"] if r["numero"] == 14)
    assert linear["datos"]["mismos_datos"] is True
    assert set(linear["datos"]["ratios"]) == {"completo", "diferencial", "restauracion"}
    sizes = linear["datos"]["tamanios"]
    assert sizes["completo"]["filas"] > 3 * sizes["cuarto"]["filas"] > 0
    assert all(v > 0 for v in linear["datos"]["ratios"].values())
    offsite = next(r for r in data["resultados"] if r["numero"] == 7)
    assert offsite["datos"]["bytes_en_remoto"] > offsite["datos"]["bytes_archivo"] > 0
