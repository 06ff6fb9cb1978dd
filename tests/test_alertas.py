"""Alertas de vencimiento y stock: fechas en el borde, textos, sin duplicados y por conjuntos."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from inventario.modules.alertas.service import generate_alerts
from inventario.runtime import Runtime
from tests.crud_support import lot, product, today


def alerts(runtime: Runtime) -> Sequence[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id_notificacion, tipo, titulo, mensaje, semaforo, referencia_tipo, referencia_id, leida "
                "FROM notificaciones ORDER BY id_notificacion"
            )
        ).all()


def by_ref(runtime: Runtime) -> dict[tuple[str, int], list[str]]:
    out: dict[tuple[str, int], list[str]] = {}
    for a in alerts(runtime):
        out.setdefault((a.referencia_tipo, a.referencia_id), []).append(a.semaforo)
    return out


def test_fechas_en_el_borde_y_textos(runtime: Runtime) -> None:
    hoy = today(runtime)
    n = runtime.settings.ALERTAS_DIAS_VENCIMIENTO
    assert n == 30
    with runtime.engine.begin() as conn:
        p = product(conn, "MED-001", "Amoxicilina 500 mg x 21 cápsulas", stock_minimo=10)
        vencido_ayer = lot(conn, p, "L-AYER", hoy - timedelta(days=1), 7)
        vence_hoy = lot(conn, p, "L-HOY", hoy, 4)
        vence_en_n = lot(conn, p, "L-N", hoy + timedelta(days=n), 12)
        vence_en_n_mas_1 = lot(conn, p, "L-N1", hoy + timedelta(days=n + 1), 30)
        sin_fecha = lot(conn, p, "L-SF", None, 50)
        vencido_sin_stock = lot(conn, p, "L-VACIO", hoy - timedelta(days=100), 0)
        manana = lot(conn, p, "L-MAN", hoy + timedelta(days=1), 1)
        # Producto desactivado: ni sus lotes ni su stock alertan.
        inactivo = product(conn, "MED-002", "Jarabe retirado", stock_minimo=5, activo=False)
        lot(conn, inactivo, "L-X", hoy - timedelta(days=3), 9)
        # Stock: 0 (sin lotes), 0 (lotes agotados), bajo el mínimo, justo en el mínimo, mínimo 0.
        sin_lotes = product(conn, "ABA-001", "Arroz blanco 1 kg Diana", stock_minimo=0, unidad="kg")
        agotado = product(conn, "ABA-002", "Leche entera 1 l Alpina", stock_minimo=3, unidad="litro")
        lot(conn, agotado, "L1", hoy + timedelta(days=200), 0)
        bajo = product(conn, "HOG-001", "Pilas AA x 2 Duracell", stock_minimo=20, unidad="paquete")
        lot(conn, bajo, "L1", None, 19)
        justo = product(conn, "HOG-002", "Velas blancas x 6", stock_minimo=5)
        lot(conn, justo, "L1", None, 5)

    result = generate_alerts(runtime.engine, n)

    assert (result.lotes_vencidos, result.lotes_por_vencer, result.sin_stock, result.stock_bajo) == (
        1,
        3,
        2,
        1,
    )
    refs = by_ref(runtime)
    # Amoxicilina: 7 + 4 + 12 + 30 + 50 + 0 + 1 = 104 ≥ 10: sin alerta de stock.
    assert refs == {
        ("LOTE", vencido_ayer): ["ROJO"],
        ("LOTE", vence_hoy): ["AMARILLO"],
        ("LOTE", vence_en_n): ["AMARILLO"],
        ("LOTE", manana): ["AMARILLO"],
        ("PRODUCTO", sin_lotes): ["ROJO"],
        ("PRODUCTO", agotado): ["ROJO"],
        ("PRODUCTO", bajo): ["AMARILLO"],
    }
    for lote in (vence_en_n_mas_1, sin_fecha, vencido_sin_stock):
        assert ("LOTE", lote) not in refs
    assert ("PRODUCTO", inactivo) not in refs and ("PRODUCTO", justo) not in refs

    texts = {(a.referencia_tipo, a.referencia_id): a for a in alerts(runtime)}
    fecha = lambda d: d.strftime("%d/%m/%Y")  # noqa: E731  # el formato de los mensajes, en una línea
    a = texts[("LOTE", vencido_ayer)]
    assert (a.tipo, a.titulo) == ("VENCIMIENTO", "Lote vencido: Amoxicilina 500 mg x 21 cápsulas")
    assert a.mensaje == (
        f"El lote L-AYER de Amoxicilina 500 mg x 21 cápsulas (código MED-001) venció el "
        f"{fecha(hoy - timedelta(days=1))}, hace 1 día, y aún tiene 7 en stock (unidad: caja). Retírelo de la venta."
    )
    a = texts[("LOTE", vence_hoy)]
    assert a.titulo == "Lote por vencer: Amoxicilina 500 mg x 21 cápsulas"
    assert a.mensaje == (
        f"El lote L-HOY de Amoxicilina 500 mg x 21 cápsulas (código MED-001) vence el {fecha(hoy)} (hoy) "
        "y tiene 4 en stock (unidad: caja)."
    )
    assert (
        f"vence el {fecha(hoy + timedelta(days=n))} (en 30 días) y tiene 12 en stock"
        in texts[("LOTE", vence_en_n)].mensaje
    )
    assert "(mañana) y tiene 1 en stock" in texts[("LOTE", manana)].mensaje
    a = texts[("PRODUCTO", agotado)]
    assert (a.tipo, a.semaforo, a.titulo) == ("STOCK_BAJO", "ROJO", "Sin stock: Leche entera 1 l Alpina")
    assert (
        a.mensaje
        == "Leche entera 1 l Alpina (código ABA-002) no tiene stock: 0 (unidad: litro); stock mínimo 3."
    )
    a = texts[("PRODUCTO", bajo)]
    assert a.titulo == "Stock bajo: Pilas AA x 2 Duracell"
    assert (
        a.mensaje
        == "Quedan 19 de Pilas AA x 2 Duracell (código HOG-001, unidad: paquete); el stock mínimo es 20."
    )
    assert all(not x.leida for x in alerts(runtime))


def test_dias_de_aviso_configurables(runtime: Runtime) -> None:
    hoy = today(runtime)
    with runtime.engine.begin() as conn:
        p = product(conn, "P", "Insulina NPH", stock_minimo=0)
        hoy_id = lot(conn, p, "A", hoy, 1)
        lot(conn, p, "B", hoy + timedelta(days=1), 1)
    result = generate_alerts(runtime.engine, 0)
    assert result.lotes_por_vencer == 1 and by_ref(runtime) == {("LOTE", hoy_id): ["AMARILLO"]}


def test_sin_duplicados_el_mismo_dia_ni_mientras_no_se_lea(runtime: Runtime) -> None:
    hoy = today(runtime)
    with runtime.engine.begin() as conn:
        p = product(conn, "P", "Paracetamol 500 mg", stock_minimo=100)
        l1 = lot(conn, p, "L1", hoy + timedelta(days=5), 10)
        l2 = lot(conn, p, "L2", hoy - timedelta(days=2), 3)
    first = generate_alerts(runtime.engine, 30)
    assert first.total == 3
    assert generate_alerts(runtime.engine, 30).total == 0  # dos veces el mismo día
    # Leída hoy: tampoco se repite hoy...
    with runtime.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE notificaciones SET leida = true, fecha_lectura = now() WHERE referencia_id = :l AND referencia_tipo = 'LOTE'"
            ),
            {"l": l1},
        )
    assert generate_alerts(runtime.engine, 30).total == 0
    # ...pero al día siguiente (la alerta es de ayer) vuelve a aparecer si la condición sigue;
    # las no leídas no se repiten.
    with runtime.engine.begin() as conn:
        conn.execute(text("SET LOCAL inventario.restaurando = 'on'"))  # que el trigger no selle la fecha
        conn.execute(text("UPDATE notificaciones SET fecha_creacion = fecha_creacion - interval '1 day'"))
    again = generate_alerts(runtime.engine, 30)
    assert (again.lotes_por_vencer, again.lotes_vencidos, again.stock_bajo) == (1, 0, 0)
    assert by_ref(runtime)[("LOTE", l1)] == ["AMARILLO", "AMARILLO"]
    assert by_ref(runtime)[("LOTE", l2)] == ["ROJO"]


def test_si_empeora_sale_la_alerta_roja(runtime: Runtime) -> None:
    hoy = today(runtime)
    with runtime.engine.begin() as conn:
        p = product(conn, "P", "Ibuprofeno 400 mg", stock_minimo=5)
        l1 = lot(conn, p, "L1", hoy + timedelta(days=3), 8)
    generate_alerts(runtime.engine, 30)
    assert by_ref(runtime) == {("LOTE", l1): ["AMARILLO"]}
    # El stock baja de 8 a 2: bajo el mínimo.
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE lotes SET cantidad = 2 WHERE id_lote = :l"), {"l": l1})
    generate_alerts(runtime.engine, 30)
    assert by_ref(runtime) == {("LOTE", l1): ["AMARILLO"], ("PRODUCTO", p): ["AMARILLO"]}
    # El lote vence (aquí: se corrige su fecha): lo vencido no cuenta, el producto queda sin stock.
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE lotes SET fecha_vencimiento = :d WHERE id_lote = :l"),
            {"d": hoy - timedelta(days=1), "l": l1},
        )
    result = generate_alerts(runtime.engine, 30)
    assert (result.sin_stock, result.lotes_vencidos) == (1, 1)
    assert by_ref(runtime) == {("LOTE", l1): ["AMARILLO", "ROJO"], ("PRODUCTO", p): ["AMARILLO", "ROJO"]}
    roja = [a for a in alerts(runtime) if a.referencia_tipo == "PRODUCTO" and a.semaforo == "ROJO"]
    assert roja[0].mensaje == (
        "Ibuprofeno 400 mg (código P) no tiene stock: 0 (unidad: caja); stock mínimo 5. "
        "Además hay 2 en lotes vencidos, que no cuentan."
    )


def test_nombre_largo_no_rompe_el_titulo(runtime: Runtime) -> None:
    with runtime.engine.begin() as conn:
        product(conn, "P", "N" * 200)
    generate_alerts(runtime.engine, 30)
    [a] = alerts(runtime)
    assert len(a.titulo) == 200 and a.titulo.endswith("…") and a.titulo.startswith("Sin stock: NNN")


@pytest.mark.lento
def test_por_conjuntos_sobre_datos_de_demo_coincide_con_el_calculo_directo(runtime: Runtime) -> None:
    from inventario.demo import generate

    counts = generate(runtime.engine, 1500, 4, 6000, seed=7)
    assert counts["notificaciones"] > 0
    # La demo deja alertas sin leer con los mismos tipos y referencias: no se repiten.
    first = generate_alerts(runtime.engine, 30)
    with runtime.engine.connect() as conn:
        repeated = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM notificaciones WHERE NOT leida "
                "GROUP BY referencia_tipo, referencia_id, tipo, semaforo HAVING count(*) > 1) d"
            )
        ).scalar_one()
    assert repeated == 0 and first.total > 0
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM notificaciones"))  # las de la demo evitarían repetir las suyas
    result = generate_alerts(runtime.engine, 30)
    with runtime.engine.connect() as conn:
        vencidos, por_vencer = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE l.fecha_vencimiento < CURRENT_DATE), "
                "count(*) FILTER (WHERE l.fecha_vencimiento >= CURRENT_DATE) "
                "FROM lotes l JOIN productos p USING (id_producto) "
                "WHERE p.activo AND l.cantidad > 0 AND l.fecha_vencimiento <= CURRENT_DATE + 30"
            )
        ).one()
        sin, bajo = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE t = 0), count(*) FILTER (WHERE t > 0 AND t < stock_minimo) FROM ("
                "SELECT p.stock_minimo, coalesce(sum(l.cantidad) FILTER (WHERE l.fecha_vencimiento IS NULL "
                "OR l.fecha_vencimiento >= CURRENT_DATE), 0) AS t FROM productos p "
                "LEFT JOIN lotes l USING (id_producto) WHERE p.activo GROUP BY p.id_producto) s"
            )
        ).one()
    assert (result.lotes_vencidos, result.lotes_por_vencer, result.sin_stock, result.stock_bajo) == (
        vencidos,
        por_vencer,
        sin,
        bajo,
    )
    assert result.lotes_vencidos > 0 and result.lotes_por_vencer > 0
    assert generate_alerts(runtime.engine, 30).total == 0


def test_resumen_concuerda_en_singular_y_plural() -> None:
    from inventario.modules.alertas.service import ResultadoAlertas

    uno = ResultadoAlertas(lotes_vencidos=0, lotes_por_vencer=0, sin_stock=1, dias_vencimiento=1).resumen()
    assert uno.startswith("1 alerta nueva: 0 lotes vencidos (ROJO), 0 lotes que vencen en 1 día o menos")
    assert "1 producto sin stock (ROJO)" in uno
    dos = ResultadoAlertas(lotes_vencidos=1, lotes_por_vencer=1, dias_vencimiento=30).resumen()
    assert dos.startswith("2 alertas nuevas: 1 lote vencido (ROJO), 1 lote que vence en 30 días o menos")
    assert "0 productos sin stock (ROJO)" in dos
