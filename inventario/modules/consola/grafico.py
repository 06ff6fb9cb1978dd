"""Gráfico del Panel: tamaño (barras) y duración (línea) de los backups de la ventana de
retención, como geometría lista para un `<svg>` dibujado en el servidor (sin librerías)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from inventario.archivos import human_size

ANCHO, ALTO = 720, 220
MARGEN_IZQ, MARGEN_DER, MARGEN_SUP, MARGEN_INF = 70, 60, 16, 28


@dataclass(frozen=True)
class PuntoBackup:
    fecha: datetime
    tipo: str
    tamanio_bytes: int
    duracion_segundos: float


@dataclass(frozen=True)
class Barra:
    x: float
    y: float
    ancho: float
    alto: float
    tipo: str
    titulo: str


@dataclass
class Grafico:
    ancho: int = ANCHO
    alto: int = ALTO
    barras: list[Barra] = field(default_factory=list)
    linea: str = ""  # puntos "x,y x,y ..." de la duración
    puntos: list[tuple[float, float]] = field(default_factory=list)
    etiquetas_x: list[tuple[float, str]] = field(default_factory=list)
    max_tamano: str = ""
    max_duracion: str = ""
    vacio: bool = True
    area: tuple[float, float, float, float] = (MARGEN_IZQ, MARGEN_SUP, ANCHO - MARGEN_DER, ALTO - MARGEN_INF)


def grafico_backups(puntos: list[PuntoBackup], inicio: datetime, fin: datetime, tz: ZoneInfo) -> Grafico:
    g = Grafico()
    x0, y0, x1, y1 = g.area
    span = max((fin - inicio).total_seconds(), 1.0)

    def x_de(cuando: datetime) -> float:
        return x0 + (x1 - x0) * min(max((cuando - inicio).total_seconds() / span, 0.0), 1.0)

    for i in range(5):  # cinco fechas en el eje horizontal
        cuando = inicio + (fin - inicio) * (i / 4)
        g.etiquetas_x.append((round(x_de(cuando), 1), cuando.astimezone(tz).strftime("%d/%m")))
    if not puntos:
        return g
    g.vacio = False
    puntos = sorted(puntos, key=lambda p: p.fecha)
    max_bytes = max(p.tamanio_bytes for p in puntos) or 1
    max_seg = max(p.duracion_segundos for p in puntos) or 1.0
    g.max_tamano = human_size(max_bytes)
    g.max_duracion = f"{max_seg:.1f} s"
    # Ancho de barra: el hueco medio entre backups, acotado entre 2 y 12 px.
    ancho = min(12.0, max(2.0, (x1 - x0) / max(len(puntos), 1) * 0.6))
    coords = []
    for p in puntos:
        x = x_de(p.fecha)
        alto = (y1 - y0) * p.tamanio_bytes / max_bytes
        etiqueta = p.fecha.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        g.barras.append(
            Barra(
                round(x - ancho / 2, 1),
                round(y1 - alto, 1),
                round(ancho, 1),
                round(alto, 1),
                p.tipo,
                f"{etiqueta} {p.tipo}: {human_size(p.tamanio_bytes)}, {p.duracion_segundos:.1f} s",
            )
        )
        coords.append((round(x, 1), round(y1 - (y1 - y0) * p.duracion_segundos / max_seg, 1)))
    g.puntos = coords
    g.linea = " ".join(f"{x},{y}" for x, y in coords)
    return g
