"""Generador de carga en su propio proceso: N clientes concurrentes sobre loopback, acotado en
peticiones y en tiempo. Imprime un JSON con latencias por endpoint.

    python -m bench.carga --url http://127.0.0.1:PORT --token T --clientes 50 --peticiones 2000 \
        --segundos 60 --lotes 1,2,3

El generador es aparato de medida y comparte los núcleos con el servicio y PostgreSQL: cada ms de
CPU que gasta por petición es un ms que no tiene el servicio. Por eso el cliente por defecto es
aiohttp (parser HTTP en C) sobre uvloop; `--cliente httpx --bucle asyncio` es el de antes, para
repetir la comparación (docs/benchmarks.md, "Ronda 2m"). Con cualquiera, cada petición se mide
igual: reloj desde antes de enviarla hasta tener la respuesta entera (cuerpo incluido), estado HTTP
o nombre de la excepción.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

# (tipo, ruta, parámetros, cuerpo JSON) → estado HTTP, tras leer la respuesta entera.
Send = Callable[[str, str, dict[str, Any] | None, dict[str, Any] | None], Awaitable[int]]

# Una conexión ociosa se descarta antes de que el servidor la cierre (uvicorn: 5 s). Con el mismo
# plazo en los dos lados, una petición puede salir justo cuando el servidor cierra: ReadError. Es
# la regla de todo cliente con keep-alive: expirar antes que el servidor.
KEEPALIVE_S = 2.0
TIMEOUT_S = 30.0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def drive(send: Send, clients: int, requests: int, seconds: float, lots: list[tuple[int, int]]) -> dict:
    """La mezcla (mitad GET /productos, mitad POST /movimientos) y la contabilidad, igual para
    cualquier cliente HTTP."""
    latencies: dict[str, list[float]] = {"lectura": [], "escritura": []}
    errors: dict[str, int] = {"lectura": 0, "escritura": 0}
    statuses: dict[str, int] = {}
    remaining = [requests]
    deadline = time.monotonic() + seconds
    rng = random.Random(7)

    async def client() -> None:
        while remaining[0] > 0 and time.monotonic() < deadline:
            remaining[0] -= 1
            kind = "escritura" if rng.random() < 0.5 else "lectura"
            if kind == "lectura":
                args: tuple[str, str, dict[str, Any] | None, dict[str, Any] | None] = (
                    "GET",
                    "/api/v1/productos",
                    {"limit": 20, "offset": rng.randrange(0, 1000)},
                    None,
                )
            else:
                id_lote, id_producto = rng.choice(lots)
                body = {"tipo": "ENTRADA", "id_producto": id_producto, "id_lote": id_lote, "cantidad": 1}
                args = ("POST", "/api/v1/movimientos", None, body)
            started = time.perf_counter()
            try:
                status = await send(*args)
                ok = status < 400
                code = str(status)
            except Exception as exc:  # errores de red o de protocolo: se cuentan, la carga sigue
                ok = False
                code = exc.__class__.__name__
            latencies[kind].append((time.perf_counter() - started) * 1000)
            statuses[f"{kind} {code}"] = statuses.get(f"{kind} {code}", 0) + 1
            if not ok:
                errors[kind] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
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


async def run_aiohttp(
    url: str, token: str, clients: int, requests: int, seconds: float, lots: list[tuple[int, int]]
) -> dict:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=clients, keepalive_timeout=KEEPALIVE_S)
    async with aiohttp.ClientSession(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
    ) as http:

        async def send(
            method: str, path: str, params: dict[str, Any] | None, body: dict[str, Any] | None
        ) -> int:
            async with http.request(method, path, params=params, json=body) as response:
                await response.read()
                return response.status

        return await drive(send, clients, requests, seconds, lots)


async def run_httpx(
    url: str, token: str, clients: int, requests: int, seconds: float, lots: list[tuple[int, int]]
) -> dict:
    import httpx

    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=KEEPALIVE_S
    )
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S, limits=limits
    ) as http:

        async def send(
            method: str, path: str, params: dict[str, Any] | None, body: dict[str, Any] | None
        ) -> int:
            response = await http.request(method, path, params=params, json=body)
            return response.status_code

        return await drive(send, clients, requests, seconds, lots)


CLIENTES = {"aiohttp": run_aiohttp, "httpx": run_httpx}


def main() -> None:
    parser = argparse.ArgumentParser(description="Carga HTTP acotada sobre loopback")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--clientes", type=int, default=50)
    parser.add_argument("--peticiones", type=int, default=2000)
    parser.add_argument("--segundos", type=float, default=60)
    parser.add_argument("--lotes", required=True, help="pares id_lote:id_producto separados por comas")
    parser.add_argument("--cliente", choices=CLIENTES, default="aiohttp", help="biblioteca HTTP")
    parser.add_argument("--bucle", choices=("uvloop", "asyncio"), default="uvloop", help="bucle de eventos")
    args = parser.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost")):
        raise SystemExit("la carga solo se envía a loopback")
    lots = [(int(lote), int(producto)) for lote, producto in (p.split(":") for p in args.lotes.split(","))]
    coro = CLIENTES[args.cliente](args.url, args.token, args.clientes, args.peticiones, args.segundos, lots)
    if args.bucle == "uvloop":
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result | {"cliente": f"{args.cliente}+{args.bucle}"}))


if __name__ == "__main__":
    main()
