"""Datos de demostración realistas para pruebas de rendimiento (`inventario demo`).

Todo se genera en el servidor con `INSERT ... SELECT generate_series(...)`: nada viaja fila a fila
entre Python y PostgreSQL, así un millón de filas tarda segundos, no horas. Todo ocurre en una
transacción: o se agrega la corrida completa o nada. Los triggers de auditoría siguen activos (los
sellos de fecha son los reales), para no engañar al backup diferencial.

Coherencia garantizada: el primer movimiento de cada lote es una ENTRADA que cubre todas las
salidas y ajustes negativos posteriores de ese lote, así el saldo nunca es negativo en ningún
momento y `lotes.cantidad` es exactamente la suma de sus movimientos.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Progress = Callable[[str, int, float], None]

# Cerrojo de transacción: dos corridas simultáneas no eligen el mismo número de corrida.
_LOCK_ID = 7261003
MAX_PRODUCTOS = 9_999_999  # los códigos usan 7 dígitos
MAX_LOTES_POR_PRODUCTO = 999
MAX_MOVIMIENTOS = 100_000_000
# Con más movimientos por lote, el ingreso inicial que los cubre no cabe en `cantidad` (integer).
MAX_MOVIMIENTOS_POR_LOTE = 10_000

# Farmacia y tienda de barrio. Por categoría: (artículo, unidad), marcas y descripciones, para
# que no salgan "Pilas AA Pfizer" ni "Arroz: refrigerar entre 2 °C y 8 °C".
_CATALOGO: dict[str, tuple[list[tuple[str, str]], list[str], list[str]]] = {
    "medicamentos": (
        [
            ("Paracetamol 500 mg x 20 tabletas", "caja"),
            ("Paracetamol 120 mg/5 ml jarabe 60 ml", "frasco"),
            ("Ibuprofeno 400 mg x 10 tabletas", "caja"),
            ("Ibuprofeno 100 mg/5 ml suspensión 120 ml", "frasco"),
            ("Naproxeno sódico 550 mg x 10 tabletas", "caja"),
            ("Diclofenaco 50 mg x 20 tabletas", "caja"),
            ("Diclofenaco gel 1% 50 g", "tubo"),
            ("Amoxicilina 500 mg x 21 cápsulas", "caja"),
            ("Amoxicilina 250 mg/5 ml suspensión 100 ml", "frasco"),
            ("Azitromicina 500 mg x 3 tabletas", "caja"),
            ("Cefalexina 500 mg x 10 cápsulas", "caja"),
            ("Ciprofloxacino 500 mg x 10 tabletas", "caja"),
            ("Loratadina 10 mg x 10 tabletas", "caja"),
            ("Cetirizina 10 mg x 10 tabletas", "caja"),
            ("Omeprazol 20 mg x 14 cápsulas", "caja"),
            ("Metformina 850 mg x 30 tabletas", "caja"),
            ("Losartán 50 mg x 30 tabletas", "caja"),
            ("Enalapril 10 mg x 20 tabletas", "caja"),
            ("Atorvastatina 20 mg x 30 tabletas", "caja"),
            ("Salbutamol inhalador 100 mcg", "unidad"),
            ("Insulina NPH 100 UI/ml 10 ml", "frasco"),
            ("Dipirona 1 g/2 ml", "ampolla"),
            ("Complejo B 3 ml", "ampolla"),
            ("Vitamina C 1 g efervescente x 10", "tubo"),
            ("Sales de rehidratación oral", "sobre"),
        ],
        [
            "Genfar",
            "MK",
            "La Santé",
            "Bayer",
            "Pfizer",
            "Sanofi",
            "Tecnoquímicas",
            "Lafrancol",
            "Liomont",
            "Senosiain",
            "Bagó",
            "Roemmers",
            "Siegfried",
            "Procaps",
            "Medifarma",
            "Genérico",
        ],
        [
            "Venta libre",
            "Requiere receta médica",
            "Venta bajo fórmula médica retenida",
            "Conservar en lugar fresco y seco, a menos de 30 °C",
            "Mantener fuera del alcance de los niños",
        ],
    ),
    "cuidado": (
        [
            ("Alcohol antiséptico 70% 250 ml", "frasco"),
            ("Agua oxigenada 120 ml", "frasco"),
            ("Gasa estéril 10 x 10 cm", "paquete"),
            ("Jeringa desechable 5 ml", "unidad"),
            ("Curitas x 100", "caja"),
            ("Termómetro digital", "unidad"),
            ("Preservativos x 3", "caja"),
            ("Pañales etapa 3 x 30", "paquete"),
            ("Toallas higiénicas x 10", "paquete"),
            ("Protector solar FPS 50 120 ml", "frasco"),
            ("Crema humectante 200 ml", "frasco"),
            ("Shampoo anticaspa 400 ml", "frasco"),
            ("Jabón de tocador 110 g", "unidad"),
            ("Pasta dental 100 ml", "tubo"),
            ("Cepillo dental suave", "unidad"),
        ],
        [
            "Johnson & Johnson",
            "Nivea",
            "Colgate",
            "Huggies",
            "Nosotras",
            "Dove",
            "Protex",
            "Eucerin",
            "3M",
            "Durex",
            "Genérico",
        ],
        ["Uso externo", "Producto de higiene personal", "Mantener fuera del alcance de los niños"],
    ),
    "abarrotes": (
        [
            ("Arroz blanco 1 kg", "kg"),
            ("Frijol negro 1 kg", "kg"),
            ("Lentejas 500 g", "paquete"),
            ("Azúcar refinada 1 kg", "kg"),
            ("Sal de mesa 1 kg", "kg"),
            ("Aceite vegetal 1 l", "litro"),
            ("Harina de maíz 1 kg", "kg"),
            ("Pasta spaghetti 500 g", "paquete"),
            ("Atún en agua 140 g", "lata"),
            ("Leche entera 1 l", "litro"),
            ("Leche en polvo 400 g", "bolsa"),
            ("Café molido 250 g", "paquete"),
            ("Chocolate de mesa 250 g", "paquete"),
            ("Galletas de soda x 6", "paquete"),
            ("Gaseosa cola 2 l", "botella"),
            ("Agua sin gas 600 ml", "botella"),
            ("Jugo de naranja 1 l", "caja"),
            ("Huevos x 30", "bandeja"),
        ],
        [
            "Diana",
            "Roa",
            "La Fina",
            "Zenú",
            "Nestlé",
            "Alpina",
            "Del Valle",
            "Postobón",
            "Colanta",
            "Maseca",
            "La Costeña",
            "Doria",
            "Marca propia",
        ],
        [
            "Producto de la canasta básica",
            "Conservar en lugar fresco y seco",
            "Una vez abierto, refrigerar",
            "Oferta de temporada",
        ],
    ),
    "hogar": (
        [
            ("Detergente en polvo 1 kg", "bolsa"),
            ("Cloro 1 l", "botella"),
            ("Papel higiénico x 4", "paquete"),
            ("Pilas AA x 2", "paquete"),
            ("Fósforos x 10 cajas", "paquete"),
            ("Velas blancas x 6", "paquete"),
            ("Esponja de cocina x 3", "paquete"),
        ],
        [
            "Ariel",
            "Fab",
            "Clorox",
            "Familia",
            "Scott",
            "Duracell",
            "Energizer",
            "El Sol",
            "Scotch-Brite",
            "Marca propia",
        ],
        [
            "Artículo de limpieza",
            "No ingerir; mantener fuera del alcance de los niños",
            "Artículo para el hogar",
        ],
    ),
}


def _variants() -> tuple[list[str], list[str], list[str]]:
    """Todas las combinaciones artículo-marca de cada categoría: (nombres, unidades, descripciones).

    Fijas (no dependen de la semilla) para que la semilla sola determine los datos.
    """
    rng = random.Random(0)
    names, units, descriptions = [], [], []
    for articles, brands, texts in _CATALOGO.values():
        for article, unit in articles:
            for brand in brands:
                names.append(f"{article} {brand}")
                units.append(unit)
                descriptions.append(rng.choice(texts))
    return names, units, descriptions


_MOTIVOS_ENTRADA = [
    "Compra a proveedor",
    "Recepción de pedido",
    "Devolución de cliente",
    "Traslado desde bodega",
]
_MOTIVOS_SALIDA = [
    "Venta",
    "Venta de mostrador",
    "Dispensación con receta",
    "Consumo interno",
    "Traslado a sucursal",
]
_MOTIVOS_AJUSTE_MAS = ["Conteo físico: sobrante", "Corrección de inventario"]
_MOTIVOS_AJUSTE_MENOS = ["Conteo físico: faltante", "Producto dañado", "Baja por vencimiento"]


class DemoError(ValueError):
    """Parámetros inválidos para la generación (mensaje en español para el operador)."""


def _miles(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def validate(productos: int, lotes_por_producto: int, movimientos: int) -> None:
    if not 1 <= productos <= MAX_PRODUCTOS:
        raise DemoError(f"--productos debe estar entre 1 y {_miles(MAX_PRODUCTOS)} (recibido {productos}).")
    if not 1 <= lotes_por_producto <= MAX_LOTES_POR_PRODUCTO:
        raise DemoError(
            f"--lotes-por-producto debe estar entre 1 y {MAX_LOTES_POR_PRODUCTO} (recibido {lotes_por_producto})."
        )
    if not 0 <= movimientos <= MAX_MOVIMIENTOS:
        raise DemoError(
            f"--movimientos debe estar entre 0 y {_miles(MAX_MOVIMIENTOS)} (recibido {movimientos})."
        )
    if movimientos > productos * lotes_por_producto * MAX_MOVIMIENTOS_POR_LOTE:
        raise DemoError(
            f"--movimientos: como máximo {_miles(MAX_MOVIMIENTOS_POR_LOTE)} por lote; con "
            f"{_miles(productos * lotes_por_producto)} lotes, cree más productos o lotes."
        )


def _demo_user(conn: Connection) -> int:
    """El primer ADMIN activo; si no hay, el usuario `demo` (creado sin contraseña conocida)."""
    user_id = conn.execute(
        text("SELECT id_usuario FROM usuarios WHERE rol = 'ADMIN' AND activo ORDER BY id_usuario LIMIT 1")
    ).scalar()
    if user_id is None:
        user_id = conn.execute(text("SELECT id_usuario FROM usuarios WHERE nombre_usuario = 'demo'")).scalar()
    if user_id is None:
        import secrets

        from inventario.security import hash_password

        # Solo firma los movimientos: nadie conoce la contraseña, y está inactivo para que no entre.
        user_id = conn.execute(
            text(
                "INSERT INTO usuarios (nombre_usuario, nombre_completo, hash_password, rol, activo) "
                "VALUES ('demo', 'Datos de demostración', :h, 'OPERADOR', false) RETURNING id_usuario"
            ),
            {"h": hash_password(secrets.token_urlsafe(24))},
        ).scalar_one()
    return int(user_id)


def _steps(lotes_total: int, movimientos: int) -> list[tuple[str, str | None, list[str]]]:
    """(fase, tabla cuyas filas insertadas se cuentan, sentencias) en orden de ejecución."""
    iniciales = min(lotes_total, movimientos)  # un ingreso inicial por lote, si alcanzan
    return [
        (
            "productos",
            "productos",
            [
                """
                CREATE TEMP TABLE _demo_productos ON COMMIT DROP AS
                SELECT i AS n, nextval(pg_get_serial_sequence('productos', 'id_producto')) AS id,
                       1 + floor(random() * cardinality(CAST(:nombres AS text[])))::int AS v,
                       random() AS r_desc, random() AS r_min, random() AS r_activo
                FROM generate_series(1, :productos) AS i
                """,
                """
                INSERT INTO productos (id_producto, codigo, nombre, descripcion, unidad, stock_minimo, activo)
                SELECT id,
                       :prefijo || lpad(n::text, 7, '0'),
                       (CAST(:nombres AS text[]))[v],
                       CASE WHEN r_desc >= 0.3 THEN (CAST(:descripciones AS text[]))[v] END,
                       (CAST(:unidades AS text[]))[v],
                       (floor(r_min * 11) * 5)::int,
                       r_activo >= 0.03
                FROM _demo_productos ORDER BY n
                """,
            ],
        ),
        (
            "plan de lotes",
            None,
            [
                """
                CREATE TEMP TABLE _demo_lotes ON COMMIT DROP AS
                SELECT (p.n - 1) * :lotes_por_producto + k AS n,
                       nextval(pg_get_serial_sequence('lotes', 'id_lote')) AS id,
                       p.id AS id_producto, k,
                       -- de 6 meses atrás (vencidos) a 3 años adelante; ~8 % sin vencimiento
                       CASE WHEN random() < 0.08 THEN NULL
                            ELSE current_date + (floor(random() * (3 * 365 + 183)) - 183)::int END AS vence
                FROM _demo_productos p CROSS JOIN generate_series(1, :lotes_por_producto) AS k
                """,
                "CREATE UNIQUE INDEX ON _demo_lotes (n)",
                "ANALYZE _demo_lotes",
            ],
        ),
        (
            "plan de movimientos",
            None,
            [
                # Movimientos posteriores al ingreso inicial: lote al azar, tipo y cantidad con signo.
                f"""
                CREATE TEMP TABLE _demo_mov ON COMMIT DROP AS
                SELECT j, lote_n, tipo, cantidad,
                       CASE WHEN tipo = 'ENTRADA' THEN (CAST(:m_entrada AS text[]))[1 + floor(r_motivo * cardinality(CAST(:m_entrada AS text[])))::int]
                            WHEN tipo = 'SALIDA' THEN (CAST(:m_salida AS text[]))[1 + floor(r_motivo * cardinality(CAST(:m_salida AS text[])))::int]
                            WHEN cantidad > 0 THEN (CAST(:m_ajuste_mas AS text[]))[1 + floor(r_motivo * cardinality(CAST(:m_ajuste_mas AS text[])))::int]
                            ELSE (CAST(:m_ajuste_menos AS text[]))[1 + floor(r_motivo * cardinality(CAST(:m_ajuste_menos AS text[])))::int] END AS motivo
                FROM (
                    SELECT j, lote_n, r_motivo,
                           CASE WHEN r_tipo < 0.30 THEN 'ENTRADA' WHEN r_tipo < 0.88 THEN 'SALIDA' ELSE 'AJUSTE' END AS tipo,
                           CASE WHEN r_tipo < 0.30 THEN 6 + floor(r_cant * 195)::int
                                WHEN r_tipo < 0.88 THEN -(1 + floor(r_cant * 24)::int)
                                WHEN r_cant < 0.4 THEN 1 + floor(r_cant * 10)::int
                                ELSE -(1 + floor((r_cant - 0.4) * 8)::int) END AS cantidad
                    FROM (
                        SELECT j, 1 + floor(random() * :lotes_total)::bigint AS lote_n,
                               random() AS r_tipo, random() AS r_cant, random() AS r_motivo
                        FROM generate_series({iniciales} + 1, :movimientos) AS j
                    ) AS azar
                ) AS con_tipo
                """,
                # Ingreso inicial de cada lote (j = n, antes que todo lo demás): cubre todas las
                # salidas y ajustes negativos posteriores, más un sobrante que es cero en ~10 % de
                # los lotes (terminan agotados).
                f"""
                INSERT INTO _demo_mov (j, lote_n, tipo, cantidad, motivo)
                SELECT n, n, 'ENTRADA',
                       greatest(coalesce(s.negativos, 0)
                                + CASE WHEN random() < 0.1 THEN 0 ELSE 5 + floor(random() * 195)::int END, 1),
                       CASE WHEN random() < 0.5 THEN 'Inventario inicial' ELSE 'Compra a proveedor' END
                FROM generate_series(1, {iniciales}) AS n
                LEFT JOIN (SELECT lote_n, sum(-cantidad) AS negativos FROM _demo_mov
                           WHERE cantidad < 0 GROUP BY lote_n) AS s ON s.lote_n = n
                """,
                "ANALYZE _demo_mov",
            ],
        ),
        (
            "lotes",
            "lotes",
            [
                """
                INSERT INTO lotes (id_lote, id_producto, codigo_lote, fecha_vencimiento, cantidad)
                SELECT l.id, l.id_producto,
                       format('L%s-%s', coalesce(to_char(l.vence - 730, 'YYMM'), 'SV'), lpad(l.k::text, 3, '0')),
                       l.vence, coalesce(t.total, 0)
                FROM _demo_lotes l
                LEFT JOIN (SELECT lote_n, sum(cantidad) AS total FROM _demo_mov GROUP BY lote_n) AS t
                       ON t.lote_n = l.n
                ORDER BY l.n
                """,
            ],
        ),
        (
            "movimientos",
            "movimientos",
            [
                # ORDER BY j: los id_movimiento siguen el orden del plan (el ingreso inicial primero).
                """
                INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, motivo, id_usuario)
                SELECT m.tipo, l.id_producto, l.id, m.cantidad, m.motivo, :usuario
                FROM _demo_mov m JOIN _demo_lotes l ON l.n = m.lote_n
                ORDER BY m.j
                """,
            ],
        ),
        (
            "notificaciones",
            "notificaciones",
            [
                """
                INSERT INTO notificaciones
                    (tipo, titulo, mensaje, semaforo, leida, fecha_lectura, referencia_tipo, referencia_id)
                SELECT tipo, titulo, mensaje, semaforo, leida, CASE WHEN leida THEN now() END,
                       referencia_tipo, referencia_id
                FROM (
                    (SELECT 'VENCIMIENTO' AS tipo,
                            CASE WHEN l.vence < current_date THEN 'Lote vencido' ELSE 'Lote por vencer' END
                                || ': ' || p.nombre AS titulo,
                            format('Lote %s: %s unidades, vence el %s', lo.codigo_lote, lo.cantidad,
                                   to_char(l.vence, 'DD/MM/YYYY')) AS mensaje,
                            CASE WHEN l.vence < current_date THEN 'ROJO' ELSE 'AMARILLO' END AS semaforo,
                            random() < 0.3 AS leida, 'LOTE' AS referencia_tipo, l.id AS referencia_id
                     FROM _demo_lotes l
                     JOIN lotes lo ON lo.id_lote = l.id
                     JOIN productos p ON p.id_producto = l.id_producto
                     WHERE l.vence < current_date + 30 AND lo.cantidad > 0
                     ORDER BY l.n LIMIT :notif_vencimiento)
                    UNION ALL
                    (SELECT 'STOCK_BAJO', 'Stock bajo: ' || p.nombre,
                            format('Quedan %s (%s); mínimo %s', s.total, p.unidad, p.stock_minimo),
                            CASE WHEN s.total = 0 THEN 'ROJO' ELSE 'AMARILLO' END,
                            false, 'PRODUCTO', p.id_producto
                     FROM (SELECT l.id_producto, sum(lo.cantidad) AS total
                           FROM _demo_lotes l JOIN lotes lo ON lo.id_lote = l.id
                           GROUP BY l.id_producto) AS s
                     JOIN productos p ON p.id_producto = s.id_producto
                     WHERE s.total < p.stock_minimo
                     ORDER BY p.id_producto LIMIT :notif_stock)
                ) AS todas
                """,
            ],
        ),
    ]


def _next_run(conn: Connection) -> int:
    return int(
        conn.execute(
            text(
                "SELECT coalesce(max(CAST(substring(codigo FROM '^DEMO([0-9]+)-') AS int)), 0) + 1 "
                "FROM productos WHERE codigo ~ '^DEMO[0-9]+-'"
            )
        ).scalar_one()
    )


def _generate_on(
    conn: Connection,
    productos: int,
    lotes_por_producto: int,
    movimientos: int,
    seed: int,
    progress: Progress | None,
    analyze: bool,
) -> dict[str, int]:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    # Memoria para ordenar y agrupar el plan sin ir a disco (solo esta transacción).
    conn.execute(text("SET LOCAL work_mem = '64MB'"))
    corrida = _next_run(conn)
    usuario = _demo_user(conn)
    # setseed() fija random() de esta sesión: la misma semilla da los mismos datos.
    conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 2_000_001) / 1_000_000 - 1})
    lotes_total = productos * lotes_por_producto
    names, units, descriptions = _variants()
    params: dict[str, Any] = {
        "nombres": names,
        "unidades": units,
        "descripciones": descriptions,
        "m_entrada": _MOTIVOS_ENTRADA,
        "m_salida": _MOTIVOS_SALIDA,
        "m_ajuste_mas": _MOTIVOS_AJUSTE_MAS,
        "m_ajuste_menos": _MOTIVOS_AJUSTE_MENOS,
        "productos": productos,
        "lotes_por_producto": lotes_por_producto,
        "lotes_total": lotes_total,
        "movimientos": movimientos,
        "prefijo": f"DEMO{corrida:03d}-",
        "usuario": usuario,
        # "Unas pocas": ~1 por cada 50 lotes, con tope, para que la bandeja sea realista.
        "notif_vencimiento": min(200, max(3, lotes_total // 50)),
        "notif_stock": min(50, max(1, productos // 100)),
    }
    counts = {"productos": 0, "lotes": 0, "movimientos": 0, "notificaciones": 0}
    steps = _steps(lotes_total, movimientos)
    if analyze:
        # Dentro de la transacción ANALYZE ya ve las filas nuevas; el planificador las necesita.
        steps.append(("estadísticas", None, ["ANALYZE productos, lotes, movimientos, notificaciones"]))
    for phase, table, statements in steps:
        t0 = time.perf_counter()
        rows = 0
        for statement in statements:
            result = conn.execute(text(statement), params)
            if table is None or statement.lstrip().startswith(f"INSERT INTO {table}"):
                rows += max(result.rowcount, 0)
        if table is not None:
            counts[table] += rows
        if progress is not None:
            progress(phase, rows, time.perf_counter() - t0)
    log.info(
        "Datos de demostración: corrida %s, semilla %s, %s",
        corrida,
        seed,
        ", ".join(f"{k}={v}" for k, v in counts.items()),
    )
    return {**counts, "corrida": corrida, "semilla": seed, "id_usuario": usuario}


def generate(
    target: Engine | Session,
    productos: int,
    lotes_por_producto: int,
    movimientos: int,
    seed: int | None = None,
    progress: Progress | None = None,
    *,
    analyze: bool = True,
) -> dict[str, int]:
    """Agrega datos de demostración y devuelve cuántas filas creó de cada tabla.

    `progress(fase, filas, segundos)` se llama al terminar cada fase. Con una `Session`, la
    generación se confirma (commit) en ella. Con `analyze`, actualiza al final las estadísticas
    del planificador (las pruebas de rendimiento las necesitan frescas).
    """
    validate(productos, lotes_por_producto, movimientos)
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
    if isinstance(target, Session):
        counts = _generate_on(
            target.connection(), productos, lotes_por_producto, movimientos, seed, progress, analyze
        )
        target.commit()
        return counts
    with target.begin() as conn:
        return _generate_on(conn, productos, lotes_por_producto, movimientos, seed, progress, analyze)
