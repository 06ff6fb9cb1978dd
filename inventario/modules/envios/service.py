"""El despachador: de `notificaciones` a mensajes en los canales, durable y sin bloquear a nadie.

Quien crea una notificación solo inserta la fila (nace `envio = PENDIENTE`): un backup o un job
nunca esperan a un servidor de correo. El despachador, un hilo en cada instancia, cada
NOTIFICACIONES_INTERVALO_SEGUNDOS hace `ciclo()`:

1. `resolver_incidentes`: cierra los incidentes cuyo problema desapareció (un backup volvió a
   completarse, el job volvió a salir bien, el lote vencido ya no tiene stock, ...).
2. `planificar`: toma las notificaciones PENDIENTE con `FOR UPDATE SKIP LOCKED` (cada una la toma
   una sola instancia). ROJO: si su incidente ya está abierto, DUPLICADA; si no, abre el incidente
   (`INSERT ... ON CONFLICT`: dos instancias no pueden abrirlo dos veces) y crea un mensaje con un
   envío PENDIENTE por canal. AMARILLO/VERDE (desde NOTIFICACIONES_SEMAFORO_MINIMO): RESUMEN, para
   el resumen diario (`resumen_diario`, tras `alertas_diarias`). Bajo el mínimo o sin canales: OMITIDA.
3. `entregar_pendientes`: cada envío vencido, en su propia transacción con `FOR UPDATE SKIP LOCKED`
   (lo entrega una sola instancia). Si falla: ERROR, `intentos` + 1, `ultimo_error` (sin secretos) y
   `proximo_intento` con espera creciente; todo está en la base, así que sobrevive a un reinicio.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from inventario.config import Settings
from inventario.errors import Conflicto, NoEncontrado, cantidad
from inventario.jobs import alertas_job, backup_job
from inventario.modules.envios import canales as ch
from inventario.modules.envios.model import Envio, MensajeSalida
from inventario.modules.notificaciones.model import Notificacion
from inventario.runtime import Runtime

log = logging.getLogger(__name__)

RANGO = {"VERDE": 0, "AMARILLO": 1, "ROJO": 2}
LOTE_PLANIFICAR = 500
ESPERA_BASE = timedelta(seconds=30)
ESPERA_MAX = timedelta(hours=1)
MAX_INTENTOS = 72  # con la espera máxima de 1 h, unos tres días de reintentos
CANAL_CAIDO_TRAS = timedelta(hours=24)
RESUMEN_LOCK_KEY = 7261015
# Un resumen se lee en un teléfono: con miles de productos bajo el mínimo, los primeros y el total.
LINEAS_POR_GRUPO = 30
VIGILANCIA_LOCK_KEY = 7261016
PING_VENTANA = timedelta(days=1)  # corridas más viejas no se pingan (p. ej. al configurar el ping)

# Qué hacer, por tipo de notificación: el mensaje dice el problema, esto el siguiente paso.
QUE_HACER = {
    "BACKUP": "Revise el error en GET /api/v1/backup y en error.log; cuando esté resuelto, haga un backup "
    "a mano (POST /api/v1/backup/completo o `inventario backup crear`).",
    "BACKUP_REMOTO": "El backup local sigue valiendo. Revise BACKUP_REMOTO y la conexión (GET "
    "/api/v1/backup/estadisticas, error.log); la copia se reintenta sola.",
    "SIN_BACKUP": "Compruebe que el servicio y su planificador estén en marcha (GET /health, GET /api/v1/jobs) "
    "y haga un backup a mano cuanto antes.",
    "VENCIMIENTO": "Retire el lote de la venta y registre su salida.",
    "STOCK_BAJO": "Haga el pedido al proveedor y registre la entrada cuando llegue.",
    "DISCO_BACKUPS": "Libere espacio en el disco de BACKUP_PATH o baje BACKUP_RETENTION_DAYS: sin espacio, "
    "el próximo backup fallará.",
    "JOB_NO_CORRIO": "Compruebe que el planificador esté en marcha en alguna instancia (GET /health, sección "
    "scheduler) y lance el job a mano (POST /api/v1/jobs/{job_id}/ejecutar).",
    "MANTENIMIENTO": "Revise la corrida en GET /api/v1/jobs y error.log; el job se puede lanzar a mano.",
}
QUE_HACER_OTRO = "Revise las notificaciones en GET /api/v1/notificaciones."

TITULOS_RESUMEN = {
    "VENCIMIENTO": "Lotes por vencer",
    "STOCK_BAJO": "Productos bajo el stock mínimo",
    "BACKUP": "Backups",
}


def espera(intentos: int) -> timedelta:
    """Espera antes del reintento número `intentos` + 1: 30 s, 1 min, 2 min, ... hasta 1 h."""
    exponente = min(max(intentos - 1, 0), 20)  # 2**20 veces la base ya supera el tope
    return min(ESPERA_BASE * (2**exponente), ESPERA_MAX)


# ----------------------------------------------------------------------------------- incidentes
def clave_incidente(session: Session, n: Notificacion) -> str:
    """El problema del que avisa una notificación ROJA; mientras esté abierto no se repite."""
    if n.tipo == "BACKUP":
        return "BACKUP"  # el motor y el job avisan del mismo backup fallido: un solo incidente
    if n.tipo == "SIN_BACKUP":
        return "SIN_BACKUP"
    if n.tipo == "BACKUP_REMOTO":
        return "BACKUP_REMOTO"  # copias fuera del sitio fallando: un incidente hasta que se pongan al día
    if n.referencia_tipo == "EJECUCION_JOB" and n.referencia_id is not None:
        job_id = session.scalar(
            text("SELECT job_id FROM ejecuciones_job WHERE id_ejecucion = :id"), {"id": n.referencia_id}
        )
        if job_id:
            return f"JOB:{job_id}"
    if n.tipo in ("VENCIMIENTO", "STOCK_BAJO") and n.referencia_id is not None:
        return f"{n.tipo}:{n.referencia_tipo}:{n.referencia_id}"
    return f"NOTIFICACION:{n.id_notificacion}"


# Cada regla cierra los incidentes de una clase cuando su problema ya no está.
_RESOLVER_SQL = [
    # Copias fuera del sitio: se resuelve cuando ninguna queda en ERROR.
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave = 'BACKUP_REMOTO' AND NOT EXISTS (
           SELECT 1 FROM copia_remota c WHERE c.estado = 'ERROR' AND NOT c.eliminado_remoto)""",
    # Backup que falló o que falta: se resuelve con un backup completado después.
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave IN ('BACKUP', 'SIN_BACKUP') AND EXISTS (
           SELECT 1 FROM historial_backup h
           WHERE h.estado = 'COMPLETADO' AND h.fecha_actualizacion > i.fecha_apertura)""",
    # Job que falló: se resuelve con una corrida OK que terminó después.
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave LIKE 'JOB:%' AND EXISTS (
           SELECT 1 FROM ejecuciones_job e
           WHERE e.job_id = substr(i.clave, 5) AND e.estado = 'OK' AND e.fin > i.fecha_apertura)""",
    # Job que no corrió a su hora o quedó interrumpido: se resuelve cuando vuelve a terminar.
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave LIKE 'JOB_NO_CORRIO:%' AND EXISTS (
           SELECT 1 FROM ejecuciones_job e
           WHERE e.job_id = split_part(i.clave, ':', 2) AND e.estado IN ('OK', 'OMITIDO')
             AND e.fin > i.fecha_apertura)""",
    # Lote vencido: se resuelve cuando ya no tiene stock (o ya no existe).
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave LIKE 'VENCIMIENTO:LOTE:%' AND NOT EXISTS (
           SELECT 1 FROM lotes l
           WHERE l.id_lote = CAST(substr(i.clave, 18) AS bigint) AND l.cantidad > 0)""",
    # Producto sin stock: se resuelve cuando vuelve a tener (o se desactiva).
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave LIKE 'STOCK_BAJO:PRODUCTO:%' AND NOT EXISTS (
           SELECT 1 FROM productos p
           WHERE p.id_producto = CAST(substr(i.clave, 21) AS bigint) AND p.activo
             AND coalesce((SELECT sum(cantidad) FROM lotes l WHERE l.id_producto = p.id_producto), 0) = 0)""",
    # Cualquier otro aviso: se da por atendido cuando alguien lo lee.
    """UPDATE incidentes i SET abierto = false, fecha_resolucion = now()
       WHERE i.abierto AND i.clave LIKE 'NOTIFICACION:%' AND EXISTS (
           SELECT 1 FROM notificaciones n
           WHERE n.id_notificacion = CAST(substr(i.clave, 14) AS bigint) AND n.leida)""",
]


def resolver_incidentes(session: Session) -> int:
    total = 0
    for sql in _RESOLVER_SQL:
        total += session.execute(text(sql)).rowcount  # type: ignore[attr-defined]  # un UPDATE devuelve un CursorResult
    session.commit()
    return total


def _abrir_incidente(session: Session, clave: str, id_notificacion: int | None) -> bool:
    """True si esta notificación abre el incidente; False si ya estaba abierto (aunque sea por
    otra instancia en este mismo instante: el ON CONFLICT espera su fila y ve que está abierto)."""
    row = session.execute(
        text(
            "INSERT INTO incidentes (clave, abierto, id_notificacion) VALUES (:clave, true, :id) "
            "ON CONFLICT (clave) DO UPDATE SET abierto = true, id_notificacion = EXCLUDED.id_notificacion, "
            "fecha_apertura = now(), fecha_resolucion = NULL "
            "WHERE NOT incidentes.abierto RETURNING clave"
        ),
        {"clave": clave, "id": id_notificacion},
    ).first()
    return row is not None


# ----------------------------------------------------------------------------------- mensajes
def _crear_mensaje(
    session: Session, settings: Settings, *, clave: str, tipo: str, semaforo: str, asunto: str, cuerpo: str
) -> MensajeSalida | None:
    """Mensaje y un envío PENDIENTE por canal. None si la clave ya existe (otra instancia lo creó)."""
    id_mensaje = session.scalar(
        text(
            "INSERT INTO mensajes_salida (clave, tipo, semaforo, asunto, cuerpo) "
            "VALUES (:clave, :tipo, :semaforo, :asunto, :cuerpo) "
            "ON CONFLICT (clave) DO NOTHING RETURNING id_mensaje"
        ),
        {"clave": clave, "tipo": tipo, "semaforo": semaforo, "asunto": asunto[:300], "cuerpo": cuerpo},
    )
    if id_mensaje is None:
        return None
    destinos = [c.id for c in ch.canales(settings)] if tipo != "PING" else [ch.PING]
    for canal in destinos:
        session.add(Envio(id_mensaje=id_mensaje, canal=canal))
    session.flush()
    return session.get(MensajeSalida, id_mensaje)


def _cuerpo_alerta(n: Notificacion, settings: Settings) -> str:
    cuando = n.fecha_creacion.astimezone(settings.tz).strftime("%d/%m/%Y %H:%M")
    return (
        f"{n.mensaje}\n\nQué hacer: {QUE_HACER.get(n.tipo, QUE_HACER_OTRO)}\n\n"
        f"Semáforo {n.semaforo} · {cuando} · notificación {n.id_notificacion} del Inventario."
    )


def planificar(session: Session, settings: Settings) -> dict[str, int]:
    """Decide qué pasa con cada notificación PENDIENTE. Devuelve cuántas fueron a cada destino."""
    cuenta: dict[str, int] = defaultdict(int)
    hay_canales = bool(ch.canales(settings))
    minimo = RANGO[settings.NOTIFICACIONES_SEMAFORO_MINIMO]
    pendientes = session.scalars(
        select(Notificacion)
        .where(Notificacion.envio == "PENDIENTE")
        .order_by(Notificacion.id_notificacion)
        .limit(LOTE_PLANIFICAR)
        .with_for_update(skip_locked=True)
    ).all()
    for n in pendientes:
        if not hay_canales or RANGO.get(n.semaforo, 0) < minimo:
            n.envio = "OMITIDA"
        elif n.semaforo != "ROJO":
            n.envio = "RESUMEN"
        else:
            # Con clave ya puesta, quien la creó (la vigilancia) abrió el incidente al crearla.
            nueva = n.clave_incidente is not None
            if not nueva:
                n.clave_incidente = clave_incidente(session, n)
                nueva = _abrir_incidente(session, n.clave_incidente, n.id_notificacion)
            if not nueva:
                n.envio = "DUPLICADA"
            else:
                mensaje = _crear_mensaje(
                    session,
                    settings,
                    clave=f"ALERTA:{n.id_notificacion}",
                    tipo="ALERTA",
                    semaforo="ROJO",
                    asunto=f"[Inventario] {n.titulo}",
                    cuerpo=_cuerpo_alerta(n, settings),
                )
                n.envio = "ENVIO"
                n.id_mensaje = mensaje.id_mensaje if mensaje else None
        cuenta[n.envio] += 1
    session.commit()
    return dict(cuenta)


def resumen_diario(
    session: Session, settings: Settings, clave: str | None = None, hoy: date | None = None
) -> MensajeSalida | None:
    """Un solo mensaje con todas las notificaciones en RESUMEN (las AMARILLAS del día, sobre todo).

    `resumen_si_toca` lo llama tras cada `alertas_diarias` (clave RESUMEN:<corrida>). Planifica antes
    lo pendiente, así entran las alertas recién creadas. Un cerrojo de la base hace que dos
    instancias se turnen: la segunda ve que la clave ya existe y no hace nada."""
    planificar(session, settings)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RESUMEN_LOCK_KEY})
    hoy = hoy or datetime.now(settings.tz).date()
    if clave is not None and session.scalar(
        select(MensajeSalida.id_mensaje).where(MensajeSalida.clave == clave)
    ):
        session.commit()
        return None
    incluidas = session.scalars(
        select(Notificacion)
        .where(Notificacion.envio == "RESUMEN")
        .order_by(Notificacion.tipo, Notificacion.id_notificacion)
        .with_for_update(skip_locked=True)
    ).all()
    if not incluidas:
        if clave is not None:  # la marca de "resumen hecho" para esta corrida, sin nada que enviar
            session.add(
                MensajeSalida(clave=clave, tipo="RESUMEN", semaforo="VERDE", asunto="(sin avisos)", cuerpo="")
            )
        session.commit()
        return None
    grupos: dict[str, list[Notificacion]] = defaultdict(list)
    for n in incluidas:
        grupos[n.tipo].append(n)
    partes = []
    for tipo, items in grupos.items():
        lineas = "\n".join(f"- {n.mensaje}" for n in items[:LINEAS_POR_GRUPO])
        if len(items) > LINEAS_POR_GRUPO:
            lineas += f"\n- … y {len(items) - LINEAS_POR_GRUPO} más (GET /api/v1/notificaciones?tipo={tipo})"
        que_hacer = QUE_HACER.get(tipo)
        partes.append(
            f"{TITULOS_RESUMEN.get(tipo, tipo.capitalize())} ({len(items)}):\n{lineas}"
            + (f"\nQué hacer: {que_hacer}" if que_hacer else "")
        )
    asunto = f"[Inventario] Resumen del {hoy:%d/%m/%Y}: {cantidad(len(incluidas), 'aviso')}"
    cuerpo = "\n\n".join(partes) + "\n\nDetalle en GET /api/v1/notificaciones."
    mensaje = _crear_mensaje(
        session,
        settings,
        clave=clave or f"RESUMEN:{hoy.isoformat()}:{incluidas[0].id_notificacion}",
        tipo="RESUMEN",
        semaforo=max((n.semaforo for n in incluidas), key=lambda s: RANGO.get(s, 0)),
        asunto=asunto,
        cuerpo=cuerpo,
    )
    for n in incluidas:
        n.envio = "INCLUIDA"
        n.id_mensaje = mensaje.id_mensaje if mensaje else None
    session.commit()
    return mensaje


def ping_backup(session: Session, settings: Settings, clave: str, exito: bool) -> MensajeSalida | None:
    """El ping del "dead man's switch" tras un backup programado, como un envío durable más."""
    if settings.BACKUP_PING_URL is None:
        return None
    mensaje = _crear_mensaje(
        session,
        settings,
        clave=f"PING:{clave}",
        tipo="PING",
        semaforo="VERDE" if exito else "ROJO",
        asunto="ping",
        cuerpo="OK" if exito else "FALLO",
    )
    session.commit()
    return mensaje


def resumen_si_toca(session: Session, settings: Settings) -> MensajeSalida | None:
    """El resumen diario sale tras cada corrida OK de `alertas_diarias` (la última del día)."""
    corrida = session.scalar(
        text(
            "SELECT id_ejecucion FROM ejecuciones_job WHERE job_id = :job AND estado = 'OK' "
            "AND fin > now() - make_interval(secs => :ventana) ORDER BY fin DESC LIMIT 1"
        ),
        {"ventana": PING_VENTANA.total_seconds(), "job": alertas_job.JOB_ID},
    )
    if corrida is None:
        return None
    clave = f"RESUMEN:{corrida}"
    if session.scalar(select(MensajeSalida.id_mensaje).where(MensajeSalida.clave == clave)):
        session.rollback()
        return None
    return resumen_diario(session, settings, clave)


def pings_pendientes(session: Session, settings: Settings) -> int:
    """Un ping por corrida programada de `backup_diario` terminada: OK → BACKUP_PING_URL, ERROR → la
    variante de fallo. La clave PING:<corrida> hace que salga una sola vez entre todas las réplicas."""
    if settings.BACKUP_PING_URL is None:
        return 0
    corridas = session.execute(
        text(
            "SELECT e.id_ejecucion, e.estado FROM ejecuciones_job e "
            "WHERE e.job_id = :job AND NOT e.manual AND e.estado IN ('OK', 'ERROR') "
            "AND e.fin > now() - make_interval(secs => :ventana) "
            "AND NOT EXISTS (SELECT 1 FROM mensajes_salida m WHERE m.clave = 'PING:' || e.id_ejecucion) "
            "ORDER BY e.id_ejecucion"
        ),
        {"ventana": PING_VENTANA.total_seconds(), "job": backup_job.JOB_ID},
    ).all()
    creados = 0
    for corrida in corridas:
        creados += (
            ping_backup(session, settings, str(corrida.id_ejecucion), corrida.estado == "OK") is not None
        )
    session.commit()
    return creados


def _aviso_vigilancia(
    session: Session, clave: str, tipo: str, titulo: str, mensaje: str
) -> Notificacion | None:
    """Abre el incidente y, solo si es nuevo, crea su notificación ROJA (una por incidente)."""
    if not _abrir_incidente(session, clave, None):
        return None
    n = Notificacion(tipo=tipo, titulo=titulo, mensaje=mensaje, semaforo="ROJO", clave_incidente=clave)
    session.add(n)
    session.flush()
    session.execute(
        text("UPDATE incidentes SET id_notificacion = :id WHERE clave = :clave"),
        {"id": n.id_notificacion, "clave": clave},
    )
    return n


def vigilar(session: Session, settings: Settings) -> list[str]:
    """Los avisos ROJOS que nadie más crea: ningún backup completado en BACKUP_MAX_HORAS_SIN_BACKUP
    y poco espacio para backups. Devuelve las claves de los incidentes abiertos ahora."""
    import socket

    from inventario.modules.salud.service import OK, check_disk

    abiertos: list[str] = []
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": VIGILANCIA_LOCK_KEY})
    if settings.BACKUP_ENABLED:
        fila = session.execute(
            text(
                "SELECT (SELECT max(fecha_actualizacion) FROM historial_backup WHERE estado = 'COMPLETADO') AS ultimo, "
                "(SELECT min(fecha_creacion) FROM usuarios) AS instalacion, now() AS ahora"
            )
        ).one()
        desde = fila.ultimo or fila.instalacion
        limite = timedelta(hours=settings.BACKUP_MAX_HORAS_SIN_BACKUP)
        if desde is not None and fila.ahora - desde > limite:
            horas = int((fila.ahora - desde).total_seconds() // 3600)
            detalle = (
                f"El último backup completado es del {fila.ultimo.astimezone(settings.tz):%d/%m/%Y %H:%M}, "
                f"hace {cantidad(horas, 'hora')}"
                if fila.ultimo
                else f"No se completó ningún backup desde la instalación, hace {cantidad(horas, 'hora')}"
            )
            if _aviso_vigilancia(
                session,
                "SIN_BACKUP",
                "SIN_BACKUP",
                f"❌ Sin backups desde hace {cantidad(horas, 'hora')}",
                f"{detalle} (máximo: BACKUP_MAX_HORAS_SIN_BACKUP = {settings.BACKUP_MAX_HORAS_SIN_BACKUP} h).",
            ):
                abiertos.append("SIN_BACKUP")
    # El disco es de esta máquina: su propio incidente, que solo esta máquina abre y cierra.
    ruta = str(settings.backup_dir)
    clave_disco = f"DISCO_BACKUPS:{socket.gethostname()}:{hashlib.sha256(ruta.encode()).hexdigest()[:10]}"[
        :200
    ]
    disco = check_disk(settings.backup_dir, settings.HEALTH_DISCO_MIN_MB)
    if disco["estado"] == OK:
        session.execute(
            text(
                "UPDATE incidentes SET abierto = false, fecha_resolucion = now() WHERE clave = :c AND abierto"
            ),
            {"c": clave_disco},
        )
    elif _aviso_vigilancia(
        session,
        clave_disco,
        "DISCO_BACKUPS",
        f"❌ Disco de backups en {socket.gethostname()}",
        f"{disco['mensaje']} ({ruta}).",
    ):
        abiertos.append(clave_disco)
    session.commit()
    return abiertos


def vigilar_jobs(runtime: Runtime) -> list[str]:
    """Aviso ROJO por cada job que no corrió a su hora (pasada la gracia) o quedó interrumpido,
    con el mismo criterio que la sección `scheduler` de /health. Los que fallaron ya los avisa el
    planificador al registrar el fallo."""
    from inventario.modules.planificador.service import JobsService

    service = JobsService(runtime)
    items = service.status(datetime.now(runtime.settings.tz))
    abiertos: list[str] = []
    with runtime.session_factory() as session:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": VIGILANCIA_LOCK_KEY})
        for item in items:
            ultima = item["ultima_ejecucion"]
            fallida = ultima is not None and ultima.estado == "ERROR" and not item["interrumpida"]
            if item["problema"] is None or fallida:
                continue
            job_id = item["job_id"]
            clave = f"JOB_NO_CORRIO:{job_id}"
            if item["ambito"]:  # jobs de cada máquina: un incidente por máquina
                clave += ":" + hashlib.sha256(item["ambito"].encode()).hexdigest()[:10]
            que = "quedó interrumpido" if item["interrumpida"] else "no corrió a su hora"
            if _aviso_vigilancia(
                session,
                clave,
                "JOB_NO_CORRIO",
                f"❌ El job {job_id} {que}",
                f"{item['nombre']} ({job_id}, {item['programacion']}): {item['problema']}.",
            ):
                abiertos.append(clave)
        session.commit()
    return abiertos


# ----------------------------------------------------------------------------------- entrega
def entregar_uno(session: Session, settings: Settings) -> Envio | None:
    """Toma un envío vencido (ninguna otra instancia lo toma a la vez) y lo intenta. None: no hay."""
    fila = session.execute(
        select(Envio, MensajeSalida)
        .join(MensajeSalida, MensajeSalida.id_mensaje == Envio.id_mensaje)
        .where(
            Envio.estado.in_(("PENDIENTE", "ERROR")),
            Envio.proximo_intento.is_not(None),
            Envio.proximo_intento <= func.clock_timestamp(),
        )
        .order_by(Envio.proximo_intento, Envio.id_envio)
        .limit(1)
        .with_for_update(of=Envio, skip_locked=True)
    ).first()
    if fila is None:
        session.rollback()
        return None
    envio, mensaje = fila
    canal = ch.canal_por_id(settings, envio.canal)
    if canal is None:
        envio.estado, envio.proximo_intento = "DESCARTADA", None
        envio.ultimo_error = "El canal ya no está configurado"
    else:
        try:
            ch.entregar(settings, canal, mensaje.asunto, mensaje.cuerpo, mensaje.semaforo)
        except ch.EnvioFallido as exc:
            envio.intentos += 1
            envio.estado, envio.ultimo_error = "ERROR", exc.mensaje[: ch.ERROR_MAX]
            ahora: datetime = session.execute(select(func.now())).scalar_one()
            envio.proximo_intento = None if envio.intentos >= MAX_INTENTOS else ahora + espera(envio.intentos)
            log.warning(
                "Aviso %s por %s: intento %s falló: %s",
                mensaje.id_mensaje,
                canal,
                envio.intentos,
                exc.mensaje,
            )
        else:
            envio.intentos += 1
            envio.estado, envio.proximo_intento, envio.ultimo_error = "ENVIADA", None, None
            envio.fecha_envio = session.scalar(select(func.clock_timestamp()))
            log.info("Aviso %s enviado por %s (%s)", mensaje.id_mensaje, canal, mensaje.asunto)
    session.commit()
    return envio


def entregar_pendientes(session: Session, settings: Settings, limite: int = 200) -> int:
    hechos = 0
    while hechos < limite and entregar_uno(session, settings) is not None:
        hechos += 1
    return hechos


@dataclass
class ResultadoCiclo:
    resueltos: int = 0
    vigilancia: list[str] = field(default_factory=list)
    planificadas: dict[str, int] = field(default_factory=dict)
    resumen: bool = False
    pings: int = 0
    intentos: int = 0


def ciclo(runtime: Runtime) -> ResultadoCiclo:
    settings = runtime.settings
    with runtime.session_factory() as session:
        r = ResultadoCiclo()
        r.resueltos = resolver_incidentes(session)
        r.vigilancia = vigilar(session, settings) + vigilar_jobs(runtime)
        r.planificadas = planificar(session, settings)
        r.resumen = resumen_si_toca(session, settings) is not None
        r.pings = pings_pendientes(session, settings)
        r.intentos = entregar_pendientes(session, settings)
        return r


# ----------------------------------------------------------------------------------- prueba
ASUNTO_PRUEBA = "[Inventario] Mensaje de prueba"


def probar(settings: Settings, pedido_por: str) -> list[dict[str, Any]]:
    """Envía ya un mensaje de prueba a cada canal configurado y dice qué pasó en cada uno.

    No pasa por la base: sirve para probar un canal aunque la base esté caída. Sin canales:
    `Conflicto` con lo que hay que configurar."""
    configurados = ch.canales(settings)
    if not configurados:
        raise Conflicto(
            "No hay canales de avisos configurados: defina NOTIFICACIONES_EMAIL (con SMTP_HOST y "
            "SMTP_REMITENTE) o NOTIFICACIONES_URLS"
        )
    ahora = datetime.now(settings.tz).strftime("%d/%m/%Y %H:%M")
    cuerpo = (
        f"Mensaje de prueba del Inventario pedido por {pedido_por} el {ahora}.\n\n"
        "Si lo recibe, este canal está listo: por aquí llegarán los avisos ROJOS al momento y el "
        "resumen diario de los AMARILLOS. No hace falta hacer nada."
    )
    resultados = []
    for canal in configurados:
        try:
            ch.entregar(settings, canal, ASUNTO_PRUEBA, cuerpo, "VERDE")
        except ch.EnvioFallido as exc:
            log.warning("Prueba de avisos por %s: falló: %s", canal, exc.mensaje)
            resultados.append(
                {"canal": canal.id, "destino": canal.destino, "enviado": False, "detalle": exc.mensaje}
            )
        else:
            log.info("Prueba de avisos por %s: enviada (pedida por %s)", canal, pedido_por)
            resultados.append({"canal": canal.id, "destino": canal.destino, "enviado": True, "detalle": None})
    return resultados


# ----------------------------------------------------------------------------------- estado
def envios_de(session: Session, settings: Settings, id_notificacion: int) -> dict[str, Any]:
    """Cómo va el envío de una notificación, canal por canal (el mensaje que la lleva)."""
    n = session.get(Notificacion, id_notificacion, populate_existing=True)
    if n is None:
        raise NoEncontrado(f"No existe la notificación {id_notificacion}")
    filas: Sequence[Envio] = ()
    if n.id_mensaje is not None:
        filas = session.scalars(
            select(Envio).where(Envio.id_mensaje == n.id_mensaje).order_by(Envio.id_envio)
        ).all()
    destinos = {c.id: c.destino for c in ch.canales(settings)}
    destinos[ch.PING] = "BACKUP_PING_URL"
    return {
        "id_notificacion": n.id_notificacion,
        "envio": n.envio,
        "clave_incidente": n.clave_incidente,
        "id_mensaje": n.id_mensaje,
        "canales": [
            {
                "canal": e.canal,
                "destino": destinos.get(e.canal, "(canal ya no configurado)"),
                "estado": e.estado,
                "intentos": e.intentos,
                "ultimo_error": e.ultimo_error,
                "proximo_intento": e.proximo_intento,
                "fecha_envio": e.fecha_envio,
            }
            for e in filas
        ],
    }


def canales_caidos(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Canales con un envío en ERROR desde hace más de un día y ningún éxito después: /health."""
    rows = session.execute(
        text(
            "SELECT e.canal, min(e.fecha_creacion) AS desde, count(*) AS pendientes FROM envios e "
            "WHERE e.estado = 'ERROR' AND e.fecha_creacion < now() - make_interval(secs => :segundos) "
            "AND NOT EXISTS (SELECT 1 FROM envios ok WHERE ok.canal = e.canal AND ok.estado = 'ENVIADA' "
            "                AND ok.fecha_envio > e.fecha_creacion) "
            "GROUP BY e.canal ORDER BY e.canal"
        ),
        {"segundos": CANAL_CAIDO_TRAS.total_seconds()},
    ).all()
    destinos = {c.id: c.destino for c in ch.canales(settings)}
    return [
        {
            "canal": r.canal,
            "destino": destinos.get(r.canal, r.canal),
            "desde": r.desde,
            "sin_entregar": r.pendientes,
        }
        for r in rows
    ]


# ----------------------------------------------------------------------------------- el hilo
class Despachador:
    """Un hilo por instancia; varios a la vez se reparten el trabajo por la base (SKIP LOCKED)."""

    def __init__(self, runtime: Runtime, intervalo: float | None = None) -> None:
        self.runtime = runtime
        self.intervalo = intervalo or runtime.settings.NOTIFICACIONES_INTERVALO_SEGUNDOS
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="despachador-avisos", daemon=True)
        self._thread.start()

    def despertar(self) -> None:
        self._wake.set()

    def shutdown(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.runtime.settings.SMTP_TIMEOUT + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ciclo(self.runtime)
            except Exception:
                # Una base caída o un canal raro no matan el hilo: se reintenta en el próximo ciclo.
                log.exception("El despachador de avisos falló en este ciclo; se reintenta")
            self._wake.wait(self.intervalo)
            self._wake.clear()


__all__ = [
    "Despachador",
    "canales_caidos",
    "ciclo",
    "entregar_pendientes",
    "entregar_uno",
    "envios_de",
    "espera",
    "ping_backup",
    "pings_pendientes",
    "planificar",
    "probar",
    "resolver_incidentes",
    "resumen_diario",
    "resumen_si_toca",
    "vigilar",
    "vigilar_jobs",
]
