"""Lo que muestran las páginas de la consola, armado con los servicios de cada módulo. Sin HTTP.

Las páginas leen resúmenes (contadores, las primeras filas de cada listado), nunca tablas
enteras: cada una debe salir en menos de 100 ms con 2 millones de filas (ver bench/).

Puntos de extensión (para que un estado nuevo aparezca sin rehacer plantillas):
- `COMPONENTES`: funciones que aportan una luz al semáforo del Panel.
- `COLUMNAS_BACKUP`: columnas de la tabla de backups (Panel y Backups).
- `TIPOS_MANUALES`: los tipos que se pueden pedir desde la página Backups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from inventario.archivos import human_size
from inventario.config import Settings
from inventario.fechas import RangoFechas
from inventario.modules.backup.model import EstadoBackup, HistorialBackup, TipoBackup
from inventario.modules.consola import puertos
from inventario.modules.consola.grafico import Grafico, PuntoBackup, grafico_backups
from inventario.modules.lotes import service as lotes
from inventario.modules.notificaciones import service as notificaciones
from inventario.modules.productos import service as productos
from inventario.modules.salud.service import ERROR, OK, check_database, check_disk, check_offsite
from inventario.pagination import Pagina
from inventario.runtime import Runtime

VERDE, AMARILLO, ROJO, GRIS = "VERDE", "AMARILLO", "ROJO", "GRIS"
_GRAVEDAD = {GRIS: 0, VERDE: 1, AMARILLO: 2, ROJO: 3}

# Edad del último backup utilizable: más de un día y poco (una corrida diaria perdida) es
# AMARILLO; más de dos días, ROJO.
BACKUP_VIEJO_HORAS = 26
BACKUP_MUY_VIEJO_HORAS = 50

RESUMEN_FILAS = 5  # últimos backups y alertas en el Panel
INVENTARIO_FILAS = 50  # filas de cada tabla de Inventario
GRAFICO_MAX = 400  # backups en el gráfico (una ventana de retención de 90 días da ~90)


@dataclass(frozen=True)
class Componente:
    nombre: str
    semaforo: str
    motivo: str


@dataclass
class ContextoPanel:
    """Lo que las funciones de `COMPONENTES` consultan, leído una sola vez por página."""

    runtime: Runtime
    session: Session
    ahora: datetime
    estadisticas: dict[str, Any]
    planificador: dict[str, Any]
    base_datos: dict[str, Any] = field(default_factory=dict)
    disco: dict[str, Any] = field(default_factory=dict)
    fuera_del_sitio: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


def _base_datos(ctx: ContextoPanel) -> Componente:
    db = ctx.base_datos
    if db["estado"] != OK:
        return Componente("Base de datos", ROJO, db.get("mensaje", "No responde"))
    return Componente(
        "Base de datos", VERDE, f"PostgreSQL {db['version']}, responde en {db['latencia_ms']} ms"
    )


def _planificador(ctx: ContextoPanel) -> Componente:
    info = ctx.planificador
    semaforo = {OK: VERDE, ERROR: ROJO}.get(info.get("estado", ""), AMARILLO)
    if semaforo == VERDE:
        motivo = info.get("mensaje") or "En marcha; los jobs corrieron cuando debían"
    else:
        motivo = info.get("mensaje") or "Con problemas"
    return Componente("Planificador", semaforo, motivo)


def _disco(ctx: ContextoPanel) -> Componente:
    disco = ctx.disco
    if not disco.get("utilizable", True):
        return Componente("Disco de backups", ROJO, disco["mensaje"])
    if disco["estado"] != OK:
        return Componente("Disco de backups", AMARILLO, disco["mensaje"])
    return Componente(
        "Disco de backups",
        VERDE,
        f"{tamano(disco['libre_bytes'])} libres ({disco['libre_porcentaje']:.0f} %) en {disco['ruta']}",
    )


def _ultimo_backup(ctx: ContextoPanel) -> Componente:
    est = ctx.estadisticas
    nombre = "Último backup"
    fechas = [f for t in TIPOS_BACKUP if (f := est.get(f"ultimo_backup_{t.lower()}"))]
    ultimo = est.get("ultimo_backup") or {}
    if ultimo.get("estado") == "ERROR":
        error = est.get("ultimo_error") or {}
        return Componente(
            nombre, ROJO, f"El último backup (n.º {ultimo['id_backup']}) falló: {error.get('mensaje') or ''}"
        )
    if not fechas:
        return Componente(nombre, ROJO, "Todavía no hay ningún backup completado")
    ultima = max(fechas)
    horas = (ctx.ahora - ultima).total_seconds() / 3600
    hace = f"hace {edad(ctx.ahora - ultima)} ({fecha(ultima, ctx.settings)})"
    if not ctx.settings.BACKUP_ENABLED:
        return Componente(
            nombre, AMARILLO, f"Backups programados deshabilitados (BACKUP_ENABLED); último {hace}"
        )
    if horas > BACKUP_MUY_VIEJO_HORAS:
        return Componente(nombre, ROJO, f"El último backup utilizable es de {hace}")
    if horas > BACKUP_VIEJO_HORAS:
        return Componente(nombre, AMARILLO, f"El último backup utilizable es de {hace}")
    en_curso = f"; backup n.º {est['backup_en_curso']} en curso" if est.get("backup_en_curso") else ""
    return Componente(nombre, VERDE, f"Último backup utilizable {hace}{en_curso}")


def _copia_externa(ctx: ContextoPanel) -> Componente:
    nombre = "Copia fuera del equipo"
    info = ctx.fuera_del_sitio
    if not info.get("configurado"):
        # Sin BACKUP_REMOTO la luz queda en gris: no cuenta para el total.
        return Componente(nombre, GRIS, "Sin copia fuera del equipo configurada (BACKUP_REMOTO)")
    if info["estado"] != OK:
        return Componente(nombre, AMARILLO, info.get("mensaje") or "Copias fuera del equipo atrasadas")
    return Componente(
        nombre,
        VERDE,
        f"Al día en {info['destino']} (el último backup llegó en menos de {info['max_horas']:g} h)",
    )


COMPONENTES: list[Callable[[ContextoPanel], Componente]] = [
    _base_datos,
    _planificador,
    _disco,
    _ultimo_backup,
    _copia_externa,
]


def semaforo_general(componentes: list[Componente]) -> str:
    peor = max((c.semaforo for c in componentes), key=_GRAVEDAD.__getitem__, default=VERDE)
    return VERDE if peor == GRIS else peor


def panel(
    runtime: Runtime,
    session: Session,
    scheduler_info: Callable[[], dict[str, Any]] | None,
    ahora: datetime,
) -> dict[str, Any]:
    settings = runtime.settings
    planificador = _info_planificador(scheduler_info)
    ctx = ContextoPanel(
        runtime=runtime,
        session=session,
        ahora=ahora,
        estadisticas=puertos.estadisticas_backup(session),
        planificador=planificador,
        base_datos=check_database(runtime.engine),
        disco=check_disk(settings.backup_dir, settings.HEALTH_DISCO_MIN_MB),
        fuera_del_sitio=check_offsite(runtime.engine, settings),
    )
    componentes = [c(ctx) for c in COMPONENTES]
    ultimos, _ = puertos.listar_backups(session, 0, RESUMEN_FILAS)
    return {
        "semaforo": semaforo_general(componentes),
        "componentes": componentes,
        "estadisticas": ctx.estadisticas,
        "ultimos_backups": ultimos,
        "proximas": [
            {
                "job_id": j["job_id"],
                "programacion": j["programacion"],
                "proxima": datetime.fromisoformat(j["proxima_ejecucion"]),
                "estado": j["estado"],
                "problema": j.get("problema"),
            }
            for j in planificador.get("jobs", [])
        ],
        "alertas": alertas_sin_leer(session),
        "grafico": grafico_retencion(session, settings, ahora),
    }


def _info_planificador(scheduler_info: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
    if scheduler_info is None:
        return {"estado": "DEGRADADO", "mensaje": "Planificador no configurado", "jobs": []}
    try:
        return scheduler_info()
    except Exception as exc:  # el Panel debe mostrarse aunque el planificador falle
        return {"estado": ERROR, "mensaje": f"No se pudo consultar ({exc.__class__.__name__})", "jobs": []}


def alertas_sin_leer(session: Session) -> dict[str, Any]:
    """Las ROJO y AMARILLO sin leer más recientes, con sus totales."""
    out: dict[str, Any] = {"items": []}
    for semaforo in (ROJO, AMARILLO):
        datos = notificaciones.list_notifications(
            session, Pagina(offset=0, limit=RESUMEN_FILAS), leida=False, semaforo=semaforo
        )
        out[semaforo] = datos["total"]
        out["items"].extend(datos["items"])
    out["items"].sort(key=lambda n: (n.fecha_creacion, n.id_notificacion), reverse=True)
    out["items"] = out["items"][:RESUMEN_FILAS]
    return out


def grafico_retencion(session: Session, settings: Settings, ahora: datetime) -> Grafico:
    inicio = ahora - timedelta(days=settings.BACKUP_RETENTION_DAYS)
    filas, _ = puertos.listar_backups(
        session,
        0,
        GRAFICO_MAX,
        estado=EstadoBackup.COMPLETADO,
        fechas=RangoFechas(desde=inicio),
        incluir_eliminados=True,
    )
    puntos = [
        PuntoBackup(r.fecha_creacion, r.tipo, r.tamanio_bytes or 0, r.duracion_segundos or 0.0)
        for r in filas
        if r.fecha_creacion is not None
    ]
    return grafico_backups(puntos, inicio, ahora, settings.tz)


def inventario(session: Session, hoy: date, dias_vencimiento: int) -> dict[str, Any]:
    """Lotes vencidos o por vencer con stock, y productos activos bajo su mínimo (solo lectura)."""
    limite = hoy + timedelta(days=dias_vencimiento + 1)  # vence_antes es estricto: incluye el día N
    primeras = Pagina(offset=0, limit=INVENTARIO_FILAS)
    lotes_pagina = lotes.list_lots(session, primeras, vence_antes=limite, con_stock=True)
    productos_pagina = productos.list_products(session, primeras, activo=True, bajo_minimo=True)
    lotes_items, lotes_total = lotes_pagina["items"], lotes_pagina["total"]
    productos_items, productos_total = productos_pagina["items"], productos_pagina["total"]
    nombres = productos.names(session, {lote["id_producto"] for lote in lotes_items})
    for lote in lotes_items:
        lote["dias"] = (lote["fecha_vencimiento"] - hoy).days
        lote["producto"] = nombres.get(lote["id_producto"])
    return {
        "dias": dias_vencimiento,
        "lotes": lotes_items,
        "lotes_total": lotes_total,
        "productos": productos_items,
        "productos_total": productos_total,
    }


# ------------------------------------------------------------------ formato


def fecha(valor: datetime | None, settings: Settings) -> str:
    return valor.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if valor else "—"


def edad(delta: timedelta) -> str:
    minutos = max(0, int(delta.total_seconds() // 60))
    if minutos < 60:
        return f"{minutos} min"
    if minutos < 48 * 60:
        return f"{minutos // 60} h {minutos % 60} min"
    return f"{minutos // 1440} días"


def duracion(segundos: float | None) -> str:
    if segundos is None:
        return "—"
    if segundos < 60:
        return f"{segundos:.1f} s".replace(".", ",")
    return f"{int(segundos // 60)} min {int(segundos % 60)} s"


def tamano(valor: int | None) -> str:
    return human_size(valor).replace(".", ",") if valor is not None else "—"


@dataclass(frozen=True)
class Columna:
    titulo: str
    valor: Callable[[HistorialBackup, Settings], str]


COLUMNAS_BACKUP: list[Columna] = [
    Columna("Fecha", lambda r, s: fecha(r.fecha_creacion, s)),
    Columna("Tipo", lambda r, s: r.tipo),
    Columna("Tamaño", lambda r, s: tamano(r.tamanio_bytes)),
    Columna("Duración", lambda r, s: duracion(r.duracion_segundos)),
    Columna("Por", lambda r, s: r.ejecutado_por or "—"),
]

TIPOS_MANUALES: list[str] = list(TipoBackup)
TIPOS_BACKUP: list[str] = list(TipoBackup)
ESTADOS_BACKUP: list[str] = list(EstadoBackup)
SEMAFOROS: list[str] = [ROJO, AMARILLO, VERDE]
listar_backups = puertos.listar_backups
