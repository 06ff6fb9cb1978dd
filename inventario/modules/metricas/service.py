"""Qué mide `/metrics`. Sin HTTP.

- `ColectorBase`: lo que vive en la base (backups, jobs, notificaciones, lotes, envíos de avisos).
  Se consulta en cada lectura, así que todas las réplicas dan los mismos valores.
- `MetricasHTTP`: peticiones y latencia por plantilla de ruta (`/api/v1/productos/{id_producto}`,
  nunca la ruta real: la cardinalidad no crece con los ids). Esas son de cada proceso.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from inventario.config import Settings
from inventario.modules.backup.model import EstadoBackup, TipoBackup
from inventario.modules.planificador.model import EstadoEjecucion

log = logging.getLogger(__name__)

PREFIJO = "inventario"
TIPOS_BACKUP = tuple(TipoBackup)
ESTADOS_BACKUP = tuple(EstadoBackup)
ESTADOS_JOB = tuple(EstadoEjecucion)
SEMAFOROS = ("VERDE", "AMARILLO", "ROJO")
ESTADOS_OFFSITE = ("PENDIENTE", "COPIADO", "ERROR")
SIN_RUTA = "sin_ruta"
METODOS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_BACKUPS_SQL = """
SELECT DISTINCT ON (tipo) tipo, extract(epoch FROM fecha_actualizacion) AS cuando,
       duracion_segundos, tamanio_bytes
FROM historial_backup WHERE estado = 'COMPLETADO'
ORDER BY tipo, fecha_actualizacion DESC, id_backup DESC
"""
_BACKUPS_ESTADO_SQL = (
    "SELECT estado, count(*) AS total FROM historial_backup WHERE NOT eliminado GROUP BY estado"
)
_JOBS_SQL = """
SELECT j.job_id,
       extract(epoch FROM max(j.inicio)) AS ultima,
       extract(epoch FROM max(j.fin) FILTER (WHERE j.estado = 'OK')) AS exito,
       (SELECT u.estado FROM ejecuciones_job u WHERE u.job_id = j.job_id
        ORDER BY u.inicio DESC, u.id_ejecucion DESC LIMIT 1) AS resultado
FROM ejecuciones_job j GROUP BY j.job_id ORDER BY j.job_id
"""
_NOTIFICACIONES_SQL = (
    "SELECT semaforo, count(*) AS total, count(*) FILTER (WHERE NOT leida) AS no_leidas "
    "FROM notificaciones GROUP BY semaforo"
)
_LOTES_SQL = """
SELECT count(*) FILTER (WHERE l.fecha_vencimiento >= CURRENT_DATE) AS por_vencer,
       count(*) FILTER (WHERE l.fecha_vencimiento < CURRENT_DATE) AS vencidos
FROM lotes l JOIN productos p ON p.id_producto = l.id_producto
WHERE p.activo AND l.cantidad > 0 AND l.fecha_vencimiento <= CURRENT_DATE + CAST(:dias AS integer)
"""
_OFFSITE_SQL = """
SELECT c.estado, count(*) AS total FROM copia_remota c
JOIN historial_backup h ON h.id_backup = c.id_backup
WHERE h.eliminado IS NOT TRUE AND NOT c.eliminado_remoto GROUP BY c.estado
"""
_OFFSITE_ULTIMA_SQL = (
    "SELECT extract(epoch FROM max(fecha_copia)) FROM copia_remota WHERE fecha_copia IS NOT NULL"
)
# Lo que /health llama "atrasada": el backup completado más nuevo aún no está fuera del sitio.
_OFFSITE_ATRASO_SQL = """
SELECT CASE WHEN c.estado = 'COPIADO' THEN 0 ELSE extract(epoch FROM now() - h.fecha_creacion) END
FROM historial_backup h LEFT JOIN copia_remota c ON c.id_backup = h.id_backup
WHERE h.estado = 'COMPLETADO' AND h.eliminado IS NOT TRUE
ORDER BY h.id_backup DESC LIMIT 1
"""
_ENVIOS_SQL = """
SELECT canal, estado, count(*) AS total,
       sum(intentos - CASE WHEN estado = 'ENVIADA' THEN 1 ELSE 0 END) AS fallidos
FROM envios GROUP BY canal, estado
"""


class ColectorBase(Collector):
    """Lee la base en cada `collect()`: ningún valor vive en la memoria de una réplica."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def describe(self) -> list[Metric]:
        return []  # sin describir: el registro no consulta la base al registrarlo

    def collect(self) -> Iterator[Metric]:
        p = PREFIJO
        try:
            # Una sola transacción: todas las cifras de una lectura son de la misma instantánea.
            with self.engine.connect() as conn:
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
                conn.execute(text("SET LOCAL statement_timeout = 5000"))
                backups = conn.execute(text(_BACKUPS_SQL)).all()
                por_estado: dict[str, int] = {
                    r.estado: r.total for r in conn.execute(text(_BACKUPS_ESTADO_SQL))
                }
                jobs = conn.execute(text(_JOBS_SQL)).all()
                notificaciones = {r.semaforo: r for r in conn.execute(text(_NOTIFICACIONES_SQL)).all()}
                lotes = conn.execute(text(_LOTES_SQL), {"dias": self.settings.ALERTAS_DIAS_VENCIMIENTO}).one()
                envios = conn.execute(text(_ENVIOS_SQL)).all()
                offsite = {r.estado: r.total for r in conn.execute(text(_OFFSITE_SQL))}
                ultima_copia = conn.execute(text(_OFFSITE_ULTIMA_SQL)).scalar()
                atraso = conn.execute(text(_OFFSITE_ATRASO_SQL)).scalar()
        except Exception as exc:
            # Sin base, /metrics sigue respondiendo (las HTTP) y lo dice: así se puede alertar.
            log.warning("Métricas: no se pudo leer la base (%s)", exc.__class__.__name__)
            yield GaugeMetricFamily(
                f"{p}_base_datos_disponible", "1 si la base respondió a esta lectura", value=0
            )
            return
        yield GaugeMetricFamily(
            f"{p}_base_datos_disponible", "1 si la base respondió a esta lectura", value=1
        )

        exito = GaugeMetricFamily(
            f"{p}_backup_ultimo_exito_timestamp_seconds",
            "Fin del último backup completado, por tipo (segundos Unix)",
            labels=["tipo"],
        )
        duracion = GaugeMetricFamily(
            f"{p}_backup_ultimo_duracion_segundos", "Duración del último backup completado", labels=["tipo"]
        )
        tamanio = GaugeMetricFamily(
            f"{p}_backup_ultimo_tamanio_bytes", "Tamaño del último backup completado", labels=["tipo"]
        )
        for b in backups:
            exito.add_metric([b.tipo], float(b.cuando))
            duracion.add_metric([b.tipo], float(b.duracion_segundos or 0))
            tamanio.add_metric([b.tipo], float(b.tamanio_bytes or 0))
        yield from (exito, duracion, tamanio)
        estados = GaugeMetricFamily(
            f"{p}_backups", "Backups en el catálogo (sin los eliminados), por estado", labels=["estado"]
        )
        for estado in sorted({*ESTADOS_BACKUP, *por_estado}):
            estados.add_metric([estado], float(por_estado.get(estado, 0)))
        yield estados

        ultima = GaugeMetricFamily(
            f"{p}_job_ultima_ejecucion_timestamp_seconds",
            "Inicio de la última corrida del job",
            labels=["job_id"],
        )
        ultimo_ok = GaugeMetricFamily(
            f"{p}_job_ultimo_exito_timestamp_seconds",
            "Fin de la última corrida OK del job",
            labels=["job_id"],
        )
        resultado = GaugeMetricFamily(
            f"{p}_job_ultimo_resultado",
            "Estado de la última corrida del job: 1 en el estado actual, 0 en los demás",
            labels=["job_id", "estado"],
        )
        for j in jobs:
            ultima.add_metric([j.job_id], float(j.ultima))
            if j.exito is not None:
                ultimo_ok.add_metric([j.job_id], float(j.exito))
            for estado in ESTADOS_JOB:
                resultado.add_metric([j.job_id, estado], 1.0 if j.resultado == estado else 0.0)
        yield from (ultima, ultimo_ok, resultado)

        total = GaugeMetricFamily(f"{p}_notificaciones", "Notificaciones por semáforo", labels=["semaforo"])
        no_leidas = GaugeMetricFamily(
            f"{p}_notificaciones_no_leidas", "Notificaciones sin leer por semáforo", labels=["semaforo"]
        )
        for semaforo in SEMAFOROS:
            fila = notificaciones.get(semaforo)
            total.add_metric([semaforo], float(fila.total if fila else 0))
            no_leidas.add_metric([semaforo], float(fila.no_leidas if fila else 0))
        yield from (total, no_leidas)

        yield GaugeMetricFamily(
            f"{p}_lotes_por_vencer",
            "Lotes con stock que vencen dentro de ALERTAS_DIAS_VENCIMIENTO (productos activos)",
            value=float(lotes.por_vencer),
        )
        yield GaugeMetricFamily(
            f"{p}_lotes_vencidos_con_stock",
            "Lotes vencidos que aún tienen stock",
            value=float(lotes.vencidos),
        )

        por_canal = GaugeMetricFamily(
            f"{p}_avisos_envios", "Envíos de avisos por canal y estado", labels=["canal", "estado"]
        )
        fallidos: dict[str, float] = {}
        for e in envios:
            por_canal.add_metric([e.canal, e.estado], float(e.total))
            fallidos[e.canal] = fallidos.get(e.canal, 0.0) + float(e.fallidos or 0)
        fallos = CounterMetricFamily(
            f"{p}_avisos_intentos_fallidos",
            "Intentos de envío de avisos que fallaron, por canal",
            labels=["canal"],
        )
        for canal, n in sorted(fallidos.items()):
            fallos.add_metric([canal], n)
        yield from (por_canal, fallos)

        configurado = bool(self.settings.BACKUP_REMOTO)
        yield GaugeMetricFamily(
            f"{p}_offsite_configurado",
            "1 si hay copia fuera del sitio (BACKUP_REMOTO)",
            value=float(configurado),
        )
        if configurado:
            copias = GaugeMetricFamily(
                f"{p}_offsite_copias",
                "Copias fuera del sitio de los backups del catálogo, por estado",
                labels=["estado"],
            )
            for estado in sorted({*ESTADOS_OFFSITE, *offsite}):
                copias.add_metric([estado], float(offsite.get(estado, 0)))
            yield copias
            if ultima_copia is not None:
                yield GaugeMetricFamily(
                    f"{p}_offsite_ultima_copia_timestamp_seconds",
                    "Cuándo terminó la última copia fuera del sitio (segundos Unix)",
                    value=float(ultima_copia),
                )
            yield GaugeMetricFamily(
                f"{p}_offsite_atraso_segundos",
                "Edad del backup completado más nuevo que aún no está fuera del sitio (0: al día)",
                value=float(atraso or 0),
            )


class MetricasHTTP:
    """Middleware ASGI: cuenta y cronometra cada petición por método, plantilla de ruta y estado."""

    def __init__(self, app: Any, registry: CollectorRegistry) -> None:
        self.app = app
        self.peticiones = Counter(
            f"{PREFIJO}_http_peticiones",
            "Peticiones HTTP por método, plantilla de ruta y código de respuesta",
            ["metodo", "ruta", "estado"],
            registry=registry,
        )
        self.duracion = Histogram(
            f"{PREFIJO}_http_duracion_segundos",
            "Duración de las peticiones HTTP por método y plantilla de ruta",
            ["metodo", "ruta"],
            registry=registry,
        )

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        estado = 500
        inicio = time.perf_counter()

        async def enviar(message: MutableMapping[str, Any]) -> None:
            nonlocal estado
            if message["type"] == "http.response.start":
                estado = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, enviar)
        finally:
            # El enrutador deja en el scope la ruta que atendió: su plantilla, no la ruta pedida.
            route = scope.get("route")
            ruta = getattr(route, "path", None) or SIN_RUTA
            metodo = scope.get("method", "?")
            metodo = metodo if metodo in METODOS else "OTRO"  # un método inventado no crea series
            self.peticiones.labels(metodo, ruta, str(estado)).inc()
            self.duracion.labels(metodo, ruta).observe(time.perf_counter() - inicio)


__all__ = ["ColectorBase", "MetricasHTTP"]
