"""`python -m bench`: mide backup, restauración y servicio lado a lado, en una sola corrida.

Imprime una tabla con cada cifra, su comparación, el ratio y si se cumple el objetivo, y escribe lo
mismo en JSON. Ver docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench import medidas
from bench.entorno import Servicio, crear

ESCALAS = {
    # productos, lotes por producto, movimientos  → filas en las tablas del dominio
    "grande": (160_000, 5, 7_040_000),  # ≈ 8 millones: una cadena de tiendas
    "normal": (40_000, 5, 1_760_000),  # ≈ 2 millones: años de una tienda
    "rapida": (4_000, 5, 176_000),  # ≈ 200 mil
    "minima": (200, 2, 2_000),  # prueba de humo
}
# Medida 6: lotes para alertas_diarias y archivos para logs_maintenance, y repeticiones de cada lado.
# A 100 000 lotes la corrida dura décimas de segundo y el costo fijo domina: se mide a 1 M.
MANTENIMIENTO = {
    "grande": (4_000_000, 80_000, 3),
    "normal": (1_000_000, 20_000, 3),
    "rapida": (100_000, 10_000, 3),
    "minima": (2_000, 400, 1),
}
# Medidas 9-11: incrementales de un día y los de la cadena que se restaura.
INCREMENTALES = {"grande": (96, 24), "normal": (96, 24), "rapida": (96, 24), "minima": (4, 3)}
# Medida 12: segundos entre incrementales durante la carga (el minuto del objetivo, comprimido).
CADENCIA_INCREMENTAL = {"grande": 5.0, "normal": 5.0, "rapida": 5.0, "minima": 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--escala", choices=ESCALAS, default="normal")
    parser.add_argument(
        "--rapido", action="store_const", const="rapida", dest="escala", help="= --escala rapida"
    )
    parser.add_argument("--repeticiones", type=int, default=3)
    parser.add_argument("--clientes", type=int, default=50)
    parser.add_argument("--peticiones", type=int, default=3000, help="peticiones por fase de carga")
    parser.add_argument("--segundos-carga", type=float, default=60, help="tope de cada fase de carga")
    parser.add_argument("--json", type=Path, default=Path("bench/resultados/ultimo.json"))
    parser.add_argument(
        "--medidas",
        default="1,2,3,4,5,6,7,8,9,12,13,14",
        help="cuáles medir, p. ej. 4,5 (la 2 necesita la 1 y la 3 la 2: se añaden solas; 9, 10 y 11 van "
        "juntas; la 13 compara --workers 2 con --workers 1)",
    )
    parser.add_argument(
        "--generador",
        choices=("aiohttp+uvloop", "aiohttp+asyncio", "httpx+asyncio", "httpx+uvloop"),
        default=medidas.GENERADOR,
        help="cliente HTTP y bucle del generador de carga (medidas 4, 12 y 13); httpx+asyncio es el de "
        "la ronda 2",
    )
    args = parser.parse_args(argv)
    medidas.GENERADOR = args.generador
    try:
        wanted = {int(x) for x in args.medidas.split(",") if x.strip()}
    except ValueError:
        parser.error("--medidas: números del 1 al 14 separados por comas")
    if not wanted or not wanted <= set(range(1, 15)):
        parser.error("--medidas: números del 1 al 14 separados por comas")
    if wanted & {10, 11}:
        wanted.add(9)
    if 3 in wanted:
        wanted.add(2)
    if 2 in wanted:
        wanted.add(1)

    started = time.perf_counter()
    productos, lotes, movimientos = ESCALAS[args.escala]
    print(
        f"Escala {args.escala}: {productos} productos, {lotes} lotes/producto, {movimientos} movimientos",
        flush=True,
    )
    # Las medidas 6 y 14 crean sus propias bases: solas, la común se crea mínima (minutos menos).
    own_databases_only = wanted <= {6, 14}
    if own_databases_only:
        print("Base común a escala mínima: las medidas pedidas crean sus propias bases", flush=True)
    ent = crear(*(ESCALAS["minima"] if own_databases_only else ESCALAS[args.escala]))
    results: list[medidas.Resultado] = []
    try:
        if 1 in wanted:
            r1, base = medidas.m1_completo(ent, args.repeticiones)
            results.append(r1)
            print(f"1 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if 2 in wanted:
            r2, diff, fresh = medidas.m2_diferencial(ent, args.repeticiones, base)
            results.append(r2)
            print(f"2 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if 3 in wanted:
            results.append(medidas.m3_restauracion(ent, args.repeticiones, base, diff, fresh))
            print(f"3 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if wanted & {4, 5, 8}:
            servicio = Servicio(ent)
            try:
                if 4 in wanted:
                    results.append(
                        medidas.m4_latencia(
                            ent,
                            servicio,
                            args.repeticiones,
                            args.clientes,
                            args.peticiones,
                            args.segundos_carga,
                        )
                    )
                    print(f"4 listo ({time.perf_counter() - started:.0f} s)", flush=True)
                if 5 in wanted:
                    results.append(medidas.m5_memoria(servicio))
                    print(f"5 listo ({time.perf_counter() - started:.0f} s)", flush=True)
                if 8 in wanted:
                    results.append(medidas.m8_consola(servicio))
                    print(f"8 listo ({time.perf_counter() - started:.0f} s)", flush=True)
            finally:
                servicio.stop()
        if 6 in wanted:
            results.append(medidas.m6_mantenimiento(ent, *MANTENIMIENTO[args.escala]))
            print(f"6 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if 7 in wanted:
            from bench.remoto import m7_fuera_del_sitio

            results.append(m7_fuera_del_sitio(ent, args.repeticiones))
            print(f"7 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if 9 in wanted:
            results.extend(medidas.m9_incrementales(ent, *INCREMENTALES[args.escala], args.repeticiones))
            print(f"9-11 listos ({time.perf_counter() - started:.0f} s)", flush=True)
        if 12 in wanted:
            servicio = Servicio(ent)
            try:
                results.append(
                    medidas.m12_latencia_incrementales(
                        ent,
                        servicio,
                        args.repeticiones,
                        args.clientes,
                        args.peticiones,
                        args.segundos_carga,
                        CADENCIA_INCREMENTAL[args.escala],
                    )
                )
            finally:
                servicio.stop()
            print(f"12 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if 13 in wanted:
            results.append(
                medidas.m13_workers(
                    ent, args.repeticiones, args.clientes, args.peticiones, args.segundos_carga
                )
            )
            print(f"13 listo ({time.perf_counter() - started:.0f} s)", flush=True)
        if 14 in wanted:
            results.append(medidas.m14_linealidad(ent, ESCALAS[args.escala], args.repeticiones))
            print(f"14 listo ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        ent.close()
    elapsed = time.perf_counter() - started
    print_table(results)
    print(f"\nDuración total: {elapsed:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "escala": args.escala,
                "repeticiones": args.repeticiones,
                "segundos": elapsed,
                "generador": args.generador,
                "fecha": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resultados": [asdict(r) for r in results],
            },
            indent=2,
            ensure_ascii=False,
            default=str,
        )
    )
    print(f"JSON: {args.json}")
    return 0


def print_table(results: list[medidas.Resultado]) -> None:
    print()
    print(f"{'#':<2} {'Medida':<60} {'Ratio':>7}  {'Objetivo':<28} Cumple")
    for r in results:
        ratio = f"{r.ratio:.3f}" if r.ratio is not None else "-"
        cumple = {True: "SÍ", False: "NO", None: "-"}[r.cumple]
        print(f"{r.numero:<2} {r.medida[:60]:<60} {ratio:>7}  {r.objetivo:<28} {cumple}")
        print(f"   Inventario: {r.inventario}")
        print(f"   Referencia: {r.referencia}")


if __name__ == "__main__":
    sys.exit(main())
