"""`python -m bench.listado`: cuánto cuesta una página de `GET /movimientos` según cómo se cuente el total.

Sobre la base del bench (escala normal: 1,76 M de movimientos) y el servicio real, pide cada
variante `--veces` veces seguidas (una a la vez, en loopback, tras calentar) y da mediana y p95 del
reloj del cliente. `total_exacto=true` hace las mismas dos consultas que hacía el listado antes de
la estimación (la página y `count(*)` de todo el filtro): es el "antes".
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import httpx

from bench.__main__ import ESCALAS
from bench.carga import percentile
from bench.entorno import Servicio, crear
from bench.medidas import median

VARIANTES = {
    "sin filtros, total estimado (por omisión)": {},
    "sin filtros, total_exacto=true (como antes)": {"total_exacto": "true"},
    "página 200 (offset 10 000), estimado": {"offset": "10000"},
    "página 200 (offset 10 000), total_exacto=true": {"offset": "10000", "total_exacto": "true"},
    "tipo=SALIDA, estimado": {"tipo": "SALIDA"},
    "tipo=SALIDA, total_exacto=true": {"tipo": "SALIDA", "total_exacto": "true"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listado", description=__doc__)
    parser.add_argument("--escala", choices=ESCALAS, default="normal")
    parser.add_argument("--veces", type=int, default=21)
    args = parser.parse_args(argv)
    ent = crear(*ESCALAS[args.escala])
    results: dict[str, dict[str, float | int | bool]] = {}
    try:
        servicio = Servicio(ent)
        try:
            with httpx.Client(base_url=servicio.url, headers=servicio.headers, timeout=60) as client:
                # Filtros aparte: id_producto de un producto cualquiera (unas decenas de filas).
                producto = client.get("/api/v1/movimientos", params={"limit": 1}).json()["items"][0]
                variantes = {
                    **VARIANTES,
                    "id_producto (pocas filas), estimado": {"id_producto": str(producto["id_producto"])},
                }
                for name, params in variantes.items():
                    first = client.get("/api/v1/movimientos", params=params)  # calentar
                    first.raise_for_status()
                    times = []
                    for _ in range(args.veces):
                        started = time.perf_counter()
                        response = client.get("/api/v1/movimientos", params=params)
                        times.append((time.perf_counter() - started) * 1000)
                        response.raise_for_status()
                    body = response.json()
                    results[name] = {
                        "mediana_ms": median(times),
                        "p95_ms": percentile(times, 0.95) or 0.0,
                        "total": body["total"],
                        "total_exacto": body["total_exacto"],
                    }
                    print(
                        f"{name:<48} mediana {median(times):6.1f} ms  p95 {results[name]['p95_ms']:6.1f} ms  "
                        f"total {body['total']} ({'exacto' if body['total_exacto'] else 'estimado'})",
                        flush=True,
                    )
        finally:
            servicio.stop()
    finally:
        ent.close()
    print(json.dumps({"escala": args.escala, "veces": args.veces, "resultados": results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
