"""Estado del servicio: base de datos, disco de backups y planificador."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from inventario.archivos import nearest_existing
from inventario.config import Settings

health_log = logging.getLogger("inventario.health")

OK, DEGRADADO, ERROR = "OK", "DEGRADADO", "ERROR"


def check_database(engine: Engine) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 3000"))
            version = conn.execute(text("SHOW server_version")).scalar()
        return {
            "estado": OK,
            "latencia_ms": round((time.perf_counter() - start) * 1000, 2),
            "version": version,
        }
    except Exception as exc:  # cualquier fallo de conexión es "no disponible", nunca un 500
        return {
            "estado": ERROR,
            "latencia_ms": round((time.perf_counter() - start) * 1000, 2),
            "mensaje": f"Base de datos no disponible ({exc.__class__.__name__})",
        }


def check_disk(path: Path, min_free_mb: int) -> dict[str, Any]:
    probe = nearest_existing(path)
    usage = shutil.disk_usage(probe)
    free_mb = usage.free / (1024 * 1024)
    info: dict[str, Any] = {
        "estado": OK if free_mb >= min_free_mb else DEGRADADO,
        "ruta": str(path),
        "libre_bytes": usage.free,
        "total_bytes": usage.total,
        "libre_porcentaje": round(usage.free * 100 / usage.total, 2) if usage.total else 0.0,
        "minimo_mb": min_free_mb,
        "utilizable": True,
    }
    if info["estado"] != OK:
        info["mensaje"] = f"Quedan {free_mb:.0f} MB libres para backups (mínimo {min_free_mb} MB)"
    # El directorio (o el primer ancestro existente, donde se creará) debe poder recibir archivos.
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        info["estado"] = DEGRADADO
        info["utilizable"] = False
        info["mensaje"] = (
            f"El directorio de backups no es utilizable: {probe} no es un directorio con permiso de escritura"
        )
    return info


def check_offsite(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Copias fuera del sitio: DEGRADADO si el último backup no llegó al remoto en BACKUP_REMOTO_MAX_HORAS."""
    if not settings.BACKUP_REMOTO:
        return {"estado": OK, "configurado": False}
    from inventario.modules.remoto.service import offsite_lag

    info: dict[str, Any] = {
        "estado": OK,
        "configurado": True,
        "destino": settings.BACKUP_REMOTO,  # nombre de remoto y ruta: las credenciales viven en rclone.conf
        "max_horas": settings.BACKUP_REMOTO_MAX_HORAS,
    }
    try:
        with Session(engine) as session:
            lag = offsite_lag(session, settings)
    except Exception as exc:  # sin base ya lo dice base_datos; aquí no se sabe
        return {**info, "estado": DEGRADADO, "mensaje": f"No se pudo consultar ({exc.__class__.__name__})"}
    if lag:
        info.update(estado=DEGRADADO, mensaje=lag)
    return info


def check_notificaciones(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Canales de avisos: DEGRADADO si alguno lleva más de un día sin poder entregar."""
    from inventario.modules.envios.canales import canales
    from inventario.modules.envios.service import canales_caidos

    configurados = canales(settings)
    info: dict[str, Any] = {"estado": OK, "canales": len(configurados)}
    if not configurados:
        return info
    try:
        with Session(engine) as session:
            caidos = canales_caidos(session, settings)
    except Exception as exc:  # la base caída ya la informa base_datos
        return {**info, "estado": DEGRADADO, "mensaje": f"No se pudo consultar ({exc.__class__.__name__})"}
    if caidos:
        info["estado"] = DEGRADADO
        info["caidos"] = [{**c, "desde": c["desde"].isoformat()} for c in caidos]
        info["mensaje"] = "Sin poder entregar avisos desde hace más de un día: " + ", ".join(
            f"{c['destino']} ({c['sin_entregar']} sin entregar)" for c in caidos
        )
    return info


def overall(*states: str) -> str:
    if ERROR in states:
        return ERROR
    if DEGRADADO in states:
        return DEGRADADO
    return OK


def check_health(
    engine: Engine,
    settings: Settings,
    scheduler_info: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    database = check_database(engine)
    disk = check_disk(settings.backup_dir, settings.HEALTH_DISCO_MIN_MB)
    if scheduler_info is None:
        scheduler = {"estado": OK, "activo": False, "mensaje": "Planificador no configurado", "jobs": []}
    else:
        try:
            scheduler = scheduler_info()
        except Exception as exc:  # un fallo del planificador no debe tumbar /health con un 500
            scheduler = {
                "estado": ERROR,
                "activo": False,
                "mensaje": f"No se pudo consultar el planificador ({exc.__class__.__name__})",
                "jobs": [],
            }
    offsite = (
        check_offsite(engine, settings)
        if database["estado"] == OK or not settings.BACKUP_REMOTO
        else {"estado": OK, "configurado": True, "destino": settings.BACKUP_REMOTO}
    )
    notificaciones = check_notificaciones(engine, settings) if database["estado"] == OK else {"estado": OK}
    # Sin base no hay servicio: ERROR. Disco, planificador, avisos o copias fuera del sitio con
    # problemas: DEGRADADO.
    estado = overall(
        database["estado"],
        *(DEGRADADO for s in (disk, scheduler, notificaciones, offsite) if s["estado"] != OK),
    )
    result = {
        "estado": estado,
        "base_datos": database,
        "disco_backups": disk,
        "scheduler": scheduler,
        "notificaciones": notificaciones,
        "fuera_del_sitio": offsite,
    }
    # El nivel refleja el estado: en health.log se filtran las caídas con solo buscar ERROR.
    level = {OK: logging.INFO, DEGRADADO: logging.WARNING}.get(estado, logging.ERROR)
    problems = "".join(
        f" {name}={section['mensaje']!r}"
        for name, section in (
            ("base_datos", database),
            ("disco", disk),
            ("scheduler", scheduler),
            ("notificaciones", notificaciones),
            ("fuera_del_sitio", offsite),
        )
        if section["estado"] != OK and "mensaje" in section
    )
    health_log.log(
        level,
        "estado=%s base_datos=%s latencia_ms=%s disco=%s scheduler=%s%s",
        estado,
        database["estado"],
        database["latencia_ms"],
        disk["estado"],
        scheduler["estado"],
        problems,
    )
    return result
