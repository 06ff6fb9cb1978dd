"""Generador de carga en su propio proceso: N clientes concurrentes sobre loopback, acotado en
peticiones y en tiempo. Imprime un JSON con latencias por endpoint.

    python -m bench.carga --url http://127.0.0.1:PORT --token T --clientes 50 --peticiones 2000 \
        --segundos 60 --lotes 1,2,3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import httpx


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(
    url: str, token: str, clients: int, requests: int, seconds: float, lots: list[tuple[int, int]]
) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: dict[str, list[float]] = {"lectura": [], "escritura": []}
    errors: dict[str, int] = {"lectura": 0, "escritura": 0}
    statuses: dict[str, int] = {}
    remaining = [requests]
    deadline = time.monotonic() + seconds
    rng = random.Random(7)

    async def client(http: httpx.AsyncClient) -> None:
        while remaining[0] > 0 and time.monotonic() < deadline:
            remaining[0] -= 1
            kind = "escritura" if rng.random() < 0.5 else "lectura"
            started = time.perf_counter()
            try:
                if kind == "lectura":
                    response = await http.get(
                        "/api/v1/productos", params={"limit": 20, "offset": rng.randrange(0, 1000)}
                    )
                else:
                    id_lote, id_producto = rng.choice(lots)
                    response = await http.post(
                        "/api/v1/movimientos",
                        json={
                            "tipo": "ENTRADA",
                            "id_producto": id_producto,
                            "id_lote": id_lote,
                            "cantidad": 1,
                        },
                    )
                ok = response.status_code < 400
                code = str(response.status_code)
            except httpx.HTTPError as exc:
                ok = False
                code = exc.__class__.__name__
            statuses[f"{kind} {code}"] = statuses.get(f"{kind} {code}", 0) + 1
            latencies[kind].append((time.perf_counter() - started) * 1000)
            if not ok:
                errors[kind] += 1

    # Una conexión ociosa se descarta antes de que el servidor la cierre (uvicorn: 5 s). Con el
    # mismo plazo en los dos lados, una petición puede salir justo cuando el servidor cierra:
    # ReadError. Es la regla de todo cliente con keep-alive: expirar antes que el servidor.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        kind: {
            "peticiones": len(values),
            "errores": errors[kind],
            "p50_ms": percentile(values, 0.50),
            "p95_ms": percentile(values, 0.95),
        }
        for kind, values in latencies.items()
    } | {"segundos": elapsed, "estados": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description="Carga HTTP acotada sobre loopback")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--clientes", type=int, default=50)
    parser.add_argument("--peticiones", type=int, default=2000)
    parser.add_argument("--segundos", type=float, default=60)
    parser.add_argument("--lotes", required=True, help="pares id_lote:id_producto separados por comas")
    args = parser.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost")):
        raise SystemExit("la carga solo se envía a loopback")
    lots = [(int(lote), int(producto)) for lote, producto in (p.split(":") for p in args.lotes.split(","))]
    print(
        json.dumps(
            asyncio.run(run(args.url, args.token, args.clientes, args.peticiones, args.segundos, lots))
        )
    )


if __name__ == "__main__":
    main()
