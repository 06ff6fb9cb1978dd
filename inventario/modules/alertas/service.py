"""Alertas de vencimiento y de stock → `notificaciones`. Sin HTTP; solo SQL por conjuntos.

| Condición (productos activos)                                   | tipo          | semáforo | referencia      |
|-----------------------------------------------------------------|---------------|----------|-----------------|
| Lote con stock y `fecha_vencimiento < hoy`                      | `VENCIMIENTO` | ROJO     | (`LOTE`, id)    |
| Lote con stock que vence entre hoy y hoy + ALERTAS_DIAS_VENCIMIENTO | `VENCIMIENTO` | AMARILLO | (`LOTE`, id) |
| Producto con stock disponible 0                                 | `STOCK_BAJO`  | ROJO     | (`PRODUCTO`, id) |
| Producto con stock disponible < `stock_minimo`                  | `STOCK_BAJO`  | AMARILLO | (`PRODUCTO`, id) |

"Hoy" es `CURRENT_DATE` de la base, en `ZONA_HORARIA` (el motor fija el TimeZone de la sesión).
El stock disponible es `SUM(lotes.cantidad)` sin los lotes vencidos (no se pueden vender), el mismo
de `GET /productos` (`stock_disponible`, `bajo_minimo`); los lotes vencidos tienen su propia alerta. Lotes sin fecha de vencimiento no generan alertas de vencimiento.

Sin duplicados: no se crea una alerta si ya existe otra con la misma referencia, tipo y semáforo
que siga sin leer o que se haya creado hoy. Así, correr dos veces el mismo día no repite nada, una
alerta sin leer no se repite cada día, una leída vuelve a aparecer al día siguiente si la condición
sigue, y si un lote empeora (AMARILLO → ROJO) sale la alerta ROJA nueva.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from inventario.errors import cantidad

log = logging.getLogger(__name__)

ALERTAS_LOCK_KEY = 7261004
TITULO_MAX = 200


def _clip(expr: str, limit: int = TITULO_MAX) -> str:
    return f"(CASE WHEN length({expr}) > {limit} THEN left({expr}, {limit - 1}) || '…' ELSE {expr} END)"


# Ya avisada: misma referencia, tipo y semáforo, sin leer o creada hoy.
_YA_AVISADA = """
    EXISTS (
        SELECT 1 FROM notificaciones n
        WHERE n.referencia_tipo = CAST(:ref AS varchar) AND n.referencia_id = c.id AND n.tipo = CAST(:tipo AS varchar)
          AND n.semaforo = c.semaforo AND (NOT n.leida OR n.fecha_creacion >= CURRENT_DATE)
    )
"""

_FECHA = "to_char(c.fecha_vencimiento, 'DD/MM/YYYY')"
_DIAS = "abs(c.dias) || CASE WHEN abs(c.dias) = 1 THEN ' día' ELSE ' días' END"

LOTES_SQL = f"""
WITH c AS (
    SELECT l.id_lote AS id, l.codigo_lote, l.fecha_vencimiento, l.cantidad,
           p.nombre, p.codigo, p.unidad,
           l.fecha_vencimiento - CURRENT_DATE AS dias,
           CASE WHEN l.fecha_vencimiento < CURRENT_DATE THEN 'ROJO' ELSE 'AMARILLO' END AS semaforo
    FROM lotes l
    JOIN productos p ON p.id_producto = l.id_producto
    WHERE p.activo AND l.cantidad > 0
      AND l.fecha_vencimiento IS NOT NULL
      AND l.fecha_vencimiento <= CURRENT_DATE + CAST(:dias AS integer)
),
nuevas AS (
    INSERT INTO notificaciones (tipo, titulo, mensaje, semaforo, referencia_tipo, referencia_id)
    SELECT CAST(:tipo AS varchar),
           CASE WHEN c.semaforo = 'ROJO' THEN {_clip("'Lote vencido: ' || c.nombre")}
                ELSE {_clip("'Lote por vencer: ' || c.nombre")} END,
           CASE WHEN c.semaforo = 'ROJO' THEN
                format('El lote %s de %s (código %s) venció el %s, hace %s, y aún tiene %s en stock (unidad: %s). Retírelo de la venta.',
                       c.codigo_lote, c.nombre, c.codigo, {_FECHA}, {_DIAS}, c.cantidad, c.unidad)
           ELSE
                format('El lote %s de %s (código %s) vence el %s (%s) y tiene %s en stock (unidad: %s).',
                       c.codigo_lote, c.nombre, c.codigo, {_FECHA},
                       CASE WHEN c.dias = 0 THEN 'hoy' WHEN c.dias = 1 THEN 'mañana' ELSE 'en ' || {_DIAS} END,
                       c.cantidad, c.unidad)
           END,
           c.semaforo, CAST(:ref AS varchar), c.id
    FROM c
    WHERE NOT {_YA_AVISADA}
    ORDER BY c.fecha_vencimiento, c.id
    RETURNING semaforo
)
SELECT semaforo, count(*) FROM nuevas GROUP BY semaforo
"""

STOCK_SQL = f"""
WITH c AS (
    SELECT p.id_producto AS id, p.nombre, p.codigo, p.unidad, p.stock_minimo,
           coalesce(s.total, 0) AS total,
           CASE WHEN coalesce(s.vencido, 0) > 0
                THEN format(' Además hay %s en lotes vencidos, que no cuentan.', s.vencido) ELSE '' END
               AS nota_vencido,
           CASE WHEN coalesce(s.total, 0) = 0 THEN 'ROJO' ELSE 'AMARILLO' END AS semaforo
    FROM productos p
    LEFT JOIN (
        SELECT id_producto,
               sum(cantidad) FILTER (WHERE fecha_vencimiento IS NULL OR fecha_vencimiento >= CURRENT_DATE)
                   AS total,
               sum(cantidad) FILTER (WHERE fecha_vencimiento < CURRENT_DATE) AS vencido
        FROM lotes GROUP BY id_producto
    ) s ON s.id_producto = p.id_producto
    WHERE p.activo AND (coalesce(s.total, 0) = 0 OR coalesce(s.total, 0) < p.stock_minimo)
),
nuevas AS (
    INSERT INTO notificaciones (tipo, titulo, mensaje, semaforo, referencia_tipo, referencia_id)
    SELECT CAST(:tipo AS varchar),
           CASE WHEN c.semaforo = 'ROJO' THEN {_clip("'Sin stock: ' || c.nombre")}
                ELSE {_clip("'Stock bajo: ' || c.nombre")} END,
           CASE WHEN c.semaforo = 'ROJO' THEN
                format('%s (código %s) no tiene stock: 0 (unidad: %s); stock mínimo %s.%s',
                       c.nombre, c.codigo, c.unidad, c.stock_minimo, c.nota_vencido)
           ELSE
                format('Quedan %s de %s (código %s, unidad: %s); el stock mínimo es %s.%s',
                       c.total, c.nombre, c.codigo, c.unidad, c.stock_minimo, c.nota_vencido)
           END,
           c.semaforo, CAST(:ref AS varchar), c.id
    FROM c
    WHERE NOT {_YA_AVISADA}
    ORDER BY c.id
    RETURNING semaforo
)
SELECT semaforo, count(*) FROM nuevas GROUP BY semaforo
"""


@dataclass
class ResultadoAlertas:
    lotes_vencidos: int = 0
    lotes_por_vencer: int = 0
    sin_stock: int = 0
    stock_bajo: int = 0
    dias_vencimiento: int = 30
    segundos: float = 0.0

    @property
    def total(self) -> int:
        return self.lotes_vencidos + self.lotes_por_vencer + self.sin_stock + self.stock_bajo

    def resumen(self) -> str:
        return (
            f"{cantidad(self.total, 'alerta nueva', 'alertas nuevas')}: "
            f"{cantidad(self.lotes_vencidos, 'lote vencido', 'lotes vencidos')} (ROJO), "
            f"{cantidad(self.lotes_por_vencer, 'lote que vence', 'lotes que vencen')} en "
            f"{cantidad(self.dias_vencimiento, 'día')} o menos (AMARILLO), "
            f"{cantidad(self.sin_stock, 'producto sin stock', 'productos sin stock')} (ROJO), "
            f"{self.stock_bajo} bajo el stock mínimo (AMARILLO) ({self.segundos:.2f} s)"
        )


def generate_on(conn: Connection, dias_vencimiento: int) -> ResultadoAlertas:
    """Genera las alertas dentro de la transacción de `conn` (quien llama confirma)."""
    started = time.perf_counter()
    # Dos generaciones simultáneas se turnan: la segunda ve lo que insertó la primera.
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ALERTAS_LOCK_KEY})
    result = ResultadoAlertas(dias_vencimiento=dias_vencimiento)
    lotes: dict[str, int] = dict(
        conn.execute(text(LOTES_SQL), {"dias": dias_vencimiento, "tipo": "VENCIMIENTO", "ref": "LOTE"}).all()
    )
    stock: dict[str, int] = dict(
        conn.execute(text(STOCK_SQL), {"tipo": "STOCK_BAJO", "ref": "PRODUCTO"}).all()
    )
    result.lotes_vencidos, result.lotes_por_vencer = lotes.get("ROJO", 0), lotes.get("AMARILLO", 0)
    result.sin_stock, result.stock_bajo = stock.get("ROJO", 0), stock.get("AMARILLO", 0)
    result.segundos = time.perf_counter() - started
    return result


def generate_alerts(engine: Engine, dias_vencimiento: int) -> ResultadoAlertas:
    with engine.begin() as conn:
        result = generate_on(conn, dias_vencimiento)
    log.info("Alertas diarias: %s", result.resumen())
    return result


__all__ = ["ResultadoAlertas", "generate_alerts", "generate_on"]
