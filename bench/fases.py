"""`python -m bench.fases [fracción] [repeticiones]`: en qué se va el tiempo de un INCREMENTAL (0.001,
el 0,1 % de las filas cambiado; 0.01 para un DIFERENCIAL; 0 para uno sin nada que copiar), fase por
fase, a escala normal. Por repetición: un COMPLETO, el cambio, y el backup medido con el reloj de
cada fase del servicio (ms, sumados si una fase se llama más de una vez). Las fases anidan: `start`
contiene cerrojo, decisión y fila EN_PROCESO; `_produce` contiene instantánea, escritura y
publicación. Ver docs/benchmarks.md, "Ronda 4"."""

from __future__ import annotations

import collections
import functools
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.__main__ import ESCALAS
from bench.entorno import crear
from bench.medidas import change_one_percent, next_second, retire, timed
from inventario.modules.backup import dump, repo, service

# (dueño, atributo, etiqueta): en el orden en que corren.
FASES: list[tuple[Any, str, str]] = [
    (service.BackupService, "start", "inicio"),
    (service.BackupService, "_lock_with_heads", "cerrojo"),
    (service.BackupService, "decide", "decidir"),
    (service.BackupService, "_insert_running", "fila EN_PROCESO"),
    (service.BackupService, "_produce", "producir"),
    (service.BackupService, "_snapshot", "instantánea"),
    (service, "write_changes", "escribir"),
    (dump, "copy_many", "COPY"),
    (repo.BackupRepo, "publish", "publicar"),
    (service.BackupService, "_complete_direct", "fila COMPLETADO"),
]


def _clocked(original: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return wrapper


def main(argv: list[str]) -> None:
    fraction = float(argv[0]) if argv else 0.001
    reps = int(argv[1]) if len(argv) > 1 else 5
    kind = "INCREMENTAL" if fraction < 0.005 else "DIFERENCIAL"
    spent: dict[str, list[float]] = collections.defaultdict(list)
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in FASES]
    for (owner, name, label), (_, _, original) in zip(FASES, originals, strict=True):
        setattr(owner, name, _clocked(original, spent[label]))
    ent = crear(*ESCALAS["normal"])
    try:
        backups = service.BackupService(ent.runtime)
        per_phase: dict[str, list[float]] = collections.defaultdict(list)
        totals: list[float] = []
        fulls: list[float] = []
        for rep in range(reps):
            next_second()
            seconds, full = timed(lambda: backups.run("COMPLETO", "BENCH"))
            fulls.append(seconds)
            if fraction > 0:
                change_one_percent(ent, fraction)
            for times in spent.values():
                times.clear()
            next_second()
            seconds, _ = timed(lambda: backups.run(kind, "BENCH"))
            totals.append(seconds)
            for label, times in spent.items():
                per_phase[label].append(sum(times))
            print(
                f"{rep}: COMPLETO {fulls[-1]:.3f} s; {kind} {1000 * seconds:.1f} ms: "
                + ", ".join(f"{label} {1000 * sum(times):.1f}" for label, times in spent.items()),
                flush=True,
            )
            retire(ent, full)
        full_s = statistics.median(fulls)
        total = statistics.median(totals)
        print(
            f"mediana: COMPLETO {full_s:.3f} s; {kind} {1000 * total:.1f} ms ({total / full_s:.4f}): "
            + ", ".join(f"{label} {1000 * statistics.median(v):.1f}" for label, v in per_phase.items())
        )
    finally:
        ent.close()
        for owner, name, original in originals:
            setattr(owner, name, original)


if __name__ == "__main__":
    main(sys.argv[1:])
