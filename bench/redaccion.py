"""`python -m bench.redaccion`: la limpieza de secretos del log ante una línea enorme elegida por un
atacante (la URL de una petición sin login), antes y después del arreglo, lado a lado.

"antes" son las expresiones que tenía `logging_setup.redact` (copiadas aquí como referencia): su
primer patrón empezaba con `[\\w-]*` sin ancla y recorría la racha entera desde cada posición.
Con `--url http://127.0.0.1:8000` mide además cuánto tarda /health mientras llegan URLs de 15 000
caracteres a un servicio en marcha (la sonda midió 18 s).
"""

from __future__ import annotations

import argparse
import re
import threading
import time

from inventario.logging_setup import redact

_KEY = r"[\w-]*(?:password|passwd|contrase(?:ñ|n)a|secret|token|api[_-]?key)[\w-]*[\"']?\s*[=:]\s*"
_ANTES = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-_\.=~+/]+"), r"\1***"),
    (re.compile(rf"(?i)({_KEY})([\"'])(?:(?!\2).)*\2"), r"\1\2***\2"),
    (re.compile(rf"(?i)({_KEY})(?![\"'])[^\s\"',;}}&]+"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+(@)"), r"\1***\2"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "***"),
]


def redact_antes(text: str) -> str:
    for pattern, repl in _ANTES:
        text = pattern.sub(repl, text)
    return text


def _tiempo(func: object, text: str) -> float:
    inicio = time.perf_counter()
    func(text)  # type: ignore[operator]  # cualquier redactor: una función de texto
    return time.perf_counter() - inicio


def _linea(n: int) -> str:
    # La línea de acceso de uvicorn con la URL de la sonda.
    return f'127.0.0.1:5000 - "GET /nope?{"A" * n} HTTP/1.1" 404'


def medir_redaccion(tamanos: list[int], tope_antes: int) -> None:
    print(f"{'caracteres':>10} {'antes (s)':>10} {'después (s)':>12} {'ratio':>8}")
    for n in tamanos:
        linea = _linea(n)
        despues = min(_tiempo(redact, linea) for _ in range(3))
        if n <= tope_antes:
            antes = _tiempo(redact_antes, linea)
            print(f"{n:>10} {antes:>10.3f} {despues:>12.5f} {antes / despues:>8.0f}×")
        else:
            print(f"{n:>10} {'(omitido)':>10} {despues:>12.5f} {'':>8}")


def medir_health(url: str, peticiones: int) -> None:
    import httpx

    fin = threading.Event()
    codigos: list[int] = []

    def atacar() -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            for n in range(peticiones):
                codigos.append(c.get(f"/nope{n}?" + "A" * 15_000).status_code)
        fin.set()

    with httpx.Client(base_url=url, timeout=120) as c:
        base = [_tiempo(lambda _: c.get("/health"), "") for _ in range(5)]
        hilo = threading.Thread(target=atacar)
        hilo.start()
        durante = []
        while not fin.is_set():
            durante.append(_tiempo(lambda _: c.get("/health"), ""))
        hilo.join()
    print(
        f"/health sin ataque: máx {max(base) * 1000:.0f} ms; con {peticiones} URLs de 15 000 caracteres "
        f"(respuestas {sorted(set(codigos))}): {len(durante)} medidas, máx {max(durante, default=0) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redaccion", description=__doc__)
    parser.add_argument("--rapido", action="store_true", help="tamaños pequeños (segundos)")
    parser.add_argument("--url", help="servicio en marcha para medir /health durante el ataque")
    parser.add_argument("--peticiones", type=int, default=50)
    args = parser.parse_args()
    if args.rapido:
        medir_redaccion([1_000, 2_000, 4_000, 15_000], tope_antes=2_000)
    else:
        medir_redaccion([1_000, 2_000, 4_000, 8_000, 15_000, 100_000], tope_antes=8_000)
    if args.url:
        medir_health(args.url, args.peticiones)


if __name__ == "__main__":
    main()
