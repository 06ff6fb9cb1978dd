"""`python -m bench.piso [fracción] [repeticiones]`: el piso de un INCREMENTAL (0.001, el 0,1 %) o de
un DIFERENCIAL (0.01): solo el trabajo que no se puede evitar, leer las claves cambiadas y copiar las
filas cambiadas, en UNA ida y vuelta por una conexión ya abierta, tras 1 s sin actividad como en las
medidas 2 y 9; en frío, enseguida otra vez en caliente, y en frío solo los COPY (sin la consulta de
claves). Sin cerrojo, catálogo, archivo, manifiesto
ni fsync. Se compara con el COMPLETO de la misma base, como las medidas 2 y 9 (ver
docs/benchmarks.md, "El piso del incremental y del diferencial")."""

from __future__ import annotations

import statistics
import sys
import time

import psycopg
from psycopg import sql

from bench.__main__ import ESCALAS
from bench.entorno import crear
from bench.medidas import change_one_percent, next_second, retire, timed
from inventario.modules.backup import dump, pg_esquema
from inventario.modules.backup.service import BackupService


class _Descarte:
    size = 0

    def write(self, data: bytes | bytearray) -> None:
        self.size += len(data)


def main(argv: list[str]) -> None:
    fraction = float(argv[0]) if argv else 0.001
    reps = int(argv[1]) if len(argv) > 1 else 5
    ent = crear(*ESCALAS["normal"])
    try:
        service = BackupService(ent.runtime)
        cold: list[float] = []
        warm: list[float] = []
        copy_only: list[float] = []
        fulls: list[float] = []
        whole: list[float] = []
        kind = "INCREMENTAL" if fraction < 0.005 else "DIFERENCIAL"
        fixed: list[float] = []
        for rep in range(reps):
            next_second()
            seconds, full = timed(lambda: service.run("COMPLETO", "BENCH"))
            fulls.append(seconds)
            change_one_percent(ent, fraction)
            manifest = service.repo.manifest(full.nombre_archivo)
            assert manifest is not None and manifest.fecha_corte_siguiente is not None
            cutoff = manifest.fecha_corte_siguiente
            with ent.runtime.server.connect() as conn:
                ordered = pg_esquema.tables(conn)
                query, params = dump.changed_keys_query(ordered, cutoff, manifest)  # type: ignore[misc]  # hay tablas auditadas
                keys = psycopg.ClientCursor(conn).mogrify(query, params).encode()
                since = sql.Literal(cutoff).as_bytes(conn)
                copies = [
                    (b"", dump._copy_text(t)[1] + b" WHERE fecha_actualizacion >= " + since)
                    for t in ordered
                    if t.audited
                ]
                times: list[float] = []
                # En frío (tras 1 s sin nada), enseguida en caliente, y otra vez en frío solo los COPY
                # (sin la consulta de claves: lo que costaría leer cada fila cambiada una sola vez).
                for tail, idle in (
                    (keys + b";\nCOMMIT", True),
                    (keys + b";\nCOMMIT", False),
                    (b"COMMIT", True),
                ):
                    if idle:
                        time.sleep(1.05)
                    sink = _Descarte()
                    started = time.perf_counter()
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    counts, _ = dump.copy_many(conn, sink, copies, tail)  # type: ignore[arg-type]  # solo usa write()
                    times.append(time.perf_counter() - started)
            cold.append(times[0])
            warm.append(times[1])
            copy_only.append(times[2])
            next_second()
            whole.append(timed(lambda: service.run(kind, "BENCH"))[0])
            next_second()
            fixed.append(timed(lambda: service.run("INCREMENTAL", "BENCH"))[0])
            print(
                f"{rep}: COMPLETO {seconds:.3f} s; piso en frío {1000 * times[0]:.1f} ms, en caliente "
                f"{1000 * times[1]:.1f} ms, solo COPY en frío {1000 * times[2]:.1f} ms "
                f"({sum(counts)} filas, {sink.size} bytes); {kind} entero {1000 * whole[-1]:.1f} ms; "
                f"INCREMENTAL sin cambios {1000 * fixed[-1]:.1f} ms",
                flush=True,
            )
            retire(ent, full)
        full_s = statistics.median(fulls)
        print(
            f"mediana: COMPLETO {full_s:.3f} s; piso en frío {1000 * statistics.median(cold):.1f} ms "
            f"({statistics.median(cold) / full_s:.4f} del completo), en caliente "
            f"{1000 * statistics.median(warm):.1f} ms ({statistics.median(warm) / full_s:.4f}); solo COPY "
            f"en frío {1000 * statistics.median(copy_only):.1f} ms ({statistics.median(copy_only) / full_s:.4f}); "
            f"backup entero {1000 * statistics.median(whole):.1f} ms ({statistics.median(whole) / full_s:.4f}); "
            f"INCREMENTAL sin cambios {1000 * statistics.median(fixed):.1f} ms ({statistics.median(fixed) / full_s:.4f})"
        )
    finally:
        ent.close()


if __name__ == "__main__":
    main(sys.argv[1:])
