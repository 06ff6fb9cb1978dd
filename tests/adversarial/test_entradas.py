"""Un corpus de entradas malas sobre cada ruta del servicio real, con token ADMIN y OPERADOR:
ni un 5xx, siempre un cuerpo JSON con `detalle`, y /health contesta mientras tanto.

Acotado (unos cientos de peticiones, semilla fija) para correr en CI en cada commit."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.adversarial.conftest import Objetivo
from tests.adversarial.rutas import CON_EFECTOS, SOLO_ADMIN, Ruta, rutas

IDS_MALOS = ["0", "-1", "99999999999999999999", "abc", "%201", "1%00", "%0A", "1e3", "%C3%B1", "A" * 300]
QUERIES_MALAS = [
    {"offset": "-1"},
    {"limit": "100000"},
    {"offset": "99999999999999999999"},
    {"desde": "no-es-fecha"},
    {"hasta": "2025-13-45"},
    {"tipo": "X" * 1000},
    {"buscar": "\x00"},
    {"buscar": "a\nb"},
    {"id_producto": "1e309"},
    {"esperar": "quizás"},
]
TEXTOS_MALOS = ["\x00", "a\x00b", "\x1b[2J", "\u2028", "x" * 100_000, "🙂" * 1000, "' OR 1=1 --"]
NUMEROS_MALOS = [-1, 2**63, 2**31, 0.5, "1", True, None, [], {}]
CUERPOS_CRUDOS: list[tuple[str, bytes]] = [
    ("application/json", b"{"),
    ("application/json", b'{"a": 1,}'),
    ("application/json", b"[]"),
    ("application/json", b"null"),
    ("application/json", b'"texto"'),
    ("application/json", b"[" * 50_000 + b"]" * 50_000),
    ("application/json", b'{"a": ' * 5_000 + b"1" + b"}" * 5_000),
    ("application/json", b"\xff\xfe\x00"),
    ("application/json", b'{"cantidad": 1e309, "id_producto": NaN}'),
    ("text/plain", b"hola"),
    ("application/xml", b"<a>1</a>"),
    ("application/x-www-form-urlencoded", b"a=%00&b=%ZZ"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nbasura"),
]


def _cuerpos(rng: random.Random) -> list[dict[str, object]]:
    """Objetos JSON con campos conocidos de la API y valores malos."""
    campos = ["nombre_usuario", "password", "nombre", "codigo", "descripcion", "codigo_lote", "cantidad"]
    campos += ["id_producto", "id_lote", "tipo", "rol", "activo", "titulo", "mensaje", "email_destino"]
    cuerpos: list[dict[str, object]] = []
    for _ in range(6):
        cuerpo: dict[str, object] = {}
        for campo in rng.sample(campos, 4):
            cuerpo[campo] = rng.choice(TEXTOS_MALOS + NUMEROS_MALOS)
        cuerpos.append(cuerpo)
    return cuerpos


def _peticiones(ruta: Ruta, rng: random.Random) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if ruta.params:
        out += [{"url": ruta.path(v)} for v in rng.sample(IDS_MALOS, 5)]
    base = ruta.path()
    if ruta.method == "GET":
        out += [{"url": base, "params": q} for q in rng.sample(QUERIES_MALAS, 4)]
    if ruta.body and not CON_EFECTOS.search(ruta.template):
        out += [{"url": base, "json": c} for c in _cuerpos(rng)]
    if ruta.body or ruta.method != "GET":
        out += [
            {"url": base, "content": raw, "headers": {"Content-Type": ct}}
            for ct, raw in rng.sample(CUERPOS_CRUDOS, 5)
        ]
    # Método que la ruta no tiene.
    out.append({"url": base, "method": "PUT"})
    return out


def _revisar(r: httpx.Response, pedido: dict[str, object]) -> str | None:
    if r.status_code >= 500:
        return f"{r.status_code} {pedido} -> {r.text[:300]}"
    if r.status_code >= 400:
        try:
            detalle = r.json()["detalle"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return f"{r.status_code} sin JSON con detalle: {pedido} -> {r.text[:300]}"
        if not isinstance(detalle, str) or not detalle:
            return f"detalle vacío: {pedido}"
    return None


def test_corpus_de_entradas_malas_sin_5xx_y_health_contesta(objetivo: Objetivo) -> None:
    rng = random.Random(20251201)
    with objetivo.cliente() as c:
        todas = rutas(c)
    trabajo: list[tuple[dict[str, str], str, dict[str, object]]] = []
    for ruta in todas:
        tokens = [objetivo.admin] if SOLO_ADMIN.search(ruta.template) else [objetivo.admin, objetivo.operador]
        for pedido in _peticiones(ruta, rng):
            # Con ADMIN, a las rutas con efectos solo van peticiones que no pueden ser válidas.
            valida_posible = (
                pedido.get("url") == ruta.path() and "content" not in pedido and "json" not in pedido
            )
            if CON_EFECTOS.search(ruta.template) and valida_posible and "params" not in pedido:
                continue
            method = str(pedido.pop("method", ruta.method))
            trabajo.append((rng.choice(tokens), method, pedido))

    fallos: list[str] = []
    salud: list[tuple[int, float]] = []
    fin = threading.Event()

    locales = threading.local()
    clientes: list[httpx.Client] = []

    def enviar(item: tuple[dict[str, str], str, dict[str, object]]) -> None:
        headers, method, pedido = item
        extra = dict(pedido.pop("headers", {}))  # type: ignore[call-overload]  # cabeceras: dict[str, str]
        if not hasattr(locales, "cliente"):
            locales.cliente = objetivo.cliente()
            clientes.append(locales.cliente)
        r = locales.cliente.request(method, headers={**headers, **extra}, **pedido)
        resumen = {"method": method, **{k: v for k, v in pedido.items() if k != "content"}}
        if (error := _revisar(r, resumen)) is not None:
            fallos.append(error)

    def vigilar() -> None:
        with objetivo.cliente() as cliente:
            while not fin.is_set():
                inicio = time.monotonic()
                salud.append((cliente.get("/health").status_code, time.monotonic() - inicio))
                time.sleep(0.05)

    vigia = threading.Thread(target=vigilar)
    vigia.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(enviar, trabajo))
    finally:
        fin.set()
        vigia.join()
        for cliente in clientes:
            cliente.close()
    assert 150 < len(trabajo) < 800, len(trabajo)
    assert not fallos, "\n".join(fallos[:20])
    assert salud and all(code in (200, 503) for code, _ in salud)
    print(
        f"\ncorpus: {len(trabajo)} peticiones; /health {len(salud)} veces, máx {max(t for _, t in salud) * 1000:.0f} ms"
    )
