"""El gráfico SVG del Panel: toda la geometría cae dentro del área, y la proporción se respeta."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from inventario.modules.consola.grafico import PuntoBackup, grafico_backups

FIN = datetime(2026, 12, 1, 12, tzinfo=UTC)
INICIO = FIN - timedelta(days=90)

puntos = st.lists(
    st.builds(
        PuntoBackup,
        fecha=st.datetimes(
            min_value=datetime(2026, 9, 1), max_value=datetime(2026, 12, 1, 11), timezones=st.just(UTC)
        ),
        tipo=st.sampled_from(["COMPLETO", "DIFERENCIAL"]),
        tamanio_bytes=st.integers(0, 10**12),
        duracion_segundos=st.floats(0, 10**5, allow_nan=False),
    ),
    max_size=120,
)


@given(puntos)
def test_geometria_dentro_del_area(datos: list[PuntoBackup]) -> None:
    g = grafico_backups(datos, INICIO, FIN, ZoneInfo("America/Mexico_City"))
    x0, y0, x1, y1 = g.area
    assert g.vacio == (not datos)
    assert len(g.barras) == len(g.puntos) == len(datos)
    margen = 6.5  # media barra, como mucho, puede asomar por los bordes del eje
    for b in g.barras:
        assert x0 - margen <= b.x and b.x + b.ancho <= x1 + margen
        assert y0 - 0.1 <= b.y <= y1 and abs(b.y + b.alto - y1) < 0.2
    for x, y in g.puntos:
        assert x0 <= x <= x1 and y0 - 0.1 <= y <= y1 + 0.1
    if datos and max(p.tamanio_bytes for p in datos) > 0:
        # La barra más alta llega arriba: la escala es la del mayor backup.
        assert min(b.y for b in g.barras) - y0 < 0.2


def test_orden_y_titulos() -> None:
    datos = [
        PuntoBackup(FIN - timedelta(days=1), "DIFERENCIAL", 500, 2.0),
        PuntoBackup(FIN - timedelta(days=2), "COMPLETO", 1000, 4.0),
    ]
    g = grafico_backups(datos, INICIO, FIN, ZoneInfo("UTC"))
    assert [b.tipo for b in g.barras] == ["COMPLETO", "DIFERENCIAL"]
    assert g.barras[1].alto * 2 - g.barras[0].alto < 0.2
    assert g.barras[0].titulo.startswith("2026-11-29 12:00 COMPLETO")
    assert len(g.etiquetas_x) == 5 and g.etiquetas_x[-1][1] == "01/12"
