"""Lo que el despachador vigila por su cuenta: el ping de los backups programados (dead man's
switch) contra un receptor HTTP real, el resumen tras `alertas_diarias`, el aviso ROJO cuando no
hay backup en BACKUP_MAX_HORAS_SIN_BACKUP y /health cuando un canal lleva un día caído."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from inventario.config import Settings
from inventario.modules.envios import service
from inventario.modules.planificador.service import JOBS, JobsService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import connect
from tests.conftest import aplicacion
from tests.crud_support import lot, product, today
from tests.envios_support import (  # fixtures de pytest
    CLAVE_URL,
    SECRETO,
    Receptor,
    logs,
    receptor_http,
    smtp,
    vencer_reintentos,
    webhook,
)
from tests.envios_support import settings as settings_con_canales  # fixture de pytest
from tests.smtp_support import Buzon

pytestmark = pytest.mark.usefixtures("restore_logging")  # el lifespan configura el logging

UUID = "5f0c1d2e-9a8b-4c7d-8e6f-0123456789ab"


@pytest.fixture
def ping() -> Iterator[Receptor]:
    with receptor_http() as receptor:
        yield receptor


@pytest.fixture
def settings(settings_con_canales: Settings, ping: Receptor) -> Settings:
    ahora = datetime.now(settings_con_canales.tz)
    return settings_con_canales.model_copy(
        update={
            "BACKUP_PING_URL": SecretStr(f"http://{ping.base()}/ping/{UUID}"),
            # Los jobs "tocan" a esta hora: run_due los ejecuta como el planificador.
            "BACKUP_HOUR": ahora.hour,
            "BACKUP_MINUTE": 0,
            "ALERTAS_HOUR": ahora.hour,
            "ALERTAS_MINUTE": 0,
        }
    )


def correr(runtime: Runtime, job_id: str, dias_atras: int = 0) -> str:
    """Una corrida programada de verdad (la de hoy, o la de hace `dias_atras` días)."""
    now = datetime.now(runtime.settings.tz) - timedelta(days=dias_atras)
    corrida = JobsService(runtime).run_due(job_id, now)
    assert corrida.resultado == "EJECUTADA", corrida
    return str(corrida.estado)


def test_ping_tras_cada_backup_programado_y_fail_si_falla(
    runtime: Runtime,
    settings: Settings,
    ping: Receptor,
    smtp: tuple[Buzon, int, Controller],
    webhook: Receptor,
    logs: Callable[[], str],
    tmp_path: Path,
) -> None:
    assert correr(runtime, "backup_diario") == "OK"
    service.ciclo(runtime)
    assert [(p.metodo, p.ruta) for p in ping.recibidas()] == [("GET", f"/ping/{UUID}")]

    # Un BACKUP_PATH que es un archivo: el backup programado falla de verdad.
    (tmp_path / "no-es-carpeta").write_text("x")
    runtime.settings = runtime.settings.model_copy(update={"BACKUP_PATH": str(tmp_path / "no-es-carpeta")})
    assert correr(runtime, "backup_diario", dias_atras=1) == "ERROR"
    ping.status = 503  # el servicio de ping también falla: se reintenta como cualquier envío
    service.ciclo(runtime)
    ping.status = 200
    vencer_reintentos(runtime)
    service.ciclo(runtime)
    service.ciclo(runtime)
    assert [(p.metodo, p.ruta) for p in ping.recibidas()] == [
        ("GET", f"/ping/{UUID}"),
        ("GET", f"/ping/{UUID}/fail"),
    ]
    # El fallo es un incidente: un email y una llamada al webhook, aunque avisen el motor y el job.
    # El directorio inutilizable es otro problema (el disco de esta máquina): su propio aviso.
    asuntos = sorted(m["Subject"] for m in smtp[0].mensajes())
    assert asuntos == sorted(
        [
            "[Inventario] ❌ Error en Backup COMPLETO",
            f"[Inventario] ❌ Disco de backups en {socket.gethostname()}",
        ]
    ), asuntos
    assert sorted(p.cuerpo["title"] for p in webhook.recibidas("POST")) == asuntos
    # Una corrida manual no es un backup programado: no se pinga.
    JobsService(runtime).run_now("backup_diario", "admin")
    service.ciclo(runtime)
    assert len(ping.recibidas()) == 2
    assert UUID not in logs() and SECRETO not in logs()


def test_el_resumen_sale_tras_alertas_diarias_una_vez(
    runtime: Runtime,
    smtp: tuple[Buzon, int, Controller],
    webhook: Receptor,
) -> None:
    hoy = today(runtime)
    with runtime.engine.begin() as conn:
        p = product(conn, "IBU", "Ibuprofeno 400", stock_minimo=50)
        lot(conn, p, "L-1", hoy + timedelta(days=5), 10)
    service.ciclo(runtime)
    assert smtp[0].recibidos == []  # AMARILLO: espera al resumen
    assert correr(runtime, "alertas_diarias") == "OK"
    assert service.ciclo(runtime).resumen
    assert not service.ciclo(runtime).resumen  # una vez por corrida
    (resumen,) = smtp[0].mensajes()
    assert resumen["Subject"].startswith("[Inventario] Resumen del") and "2 avisos" in resumen["Subject"]
    assert "Lotes por vencer (1)" in resumen.get_content()
    assert len(webhook.recibidas("POST")) == 1
    # Un AMARILLO de la tarde espera al resumen de mañana: no sale solo.
    with runtime.engine.begin() as conn:
        lot(conn, p, "L-2", hoy + timedelta(days=6), 1)
    from inventario.modules.alertas.service import generate_alerts

    generate_alerts(runtime.engine, 30)
    service.ciclo(runtime)
    assert len(smtp[0].mensajes()) == 1
    # Una corrida sin nada que resumir no envía un mensaje vacío.
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE notificaciones SET envio = 'OMITIDA' WHERE envio = 'RESUMEN'"))
    assert correr(runtime, "alertas_diarias", dias_atras=1) == "OK"
    service.ciclo(runtime)
    assert len(smtp[0].mensajes()) == 1


def envejecer_backups(server: DatabaseServer, horas: int) -> None:
    with connect(server, autocommit=False) as conn:
        conn.execute("SET LOCAL inventario.restaurando = 'on'")
        conn.execute(
            "UPDATE historial_backup SET fecha_actualizacion = now() - make_interval(hours => %s)", (horas,)
        )
        conn.commit()


def test_sin_backup_en_26_horas_un_aviso_rojo_hasta_que_vuelva_a_haber(
    runtime: Runtime,
    fresh_db: DatabaseServer,
    smtp: tuple[Buzon, int, Controller],
) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO historial_backup (tipo, nombre_archivo, ruta_archivo, estado) "
                "VALUES ('COMPLETO', 'b.sql.gz', 'b.sql.gz', 'COMPLETADO')"
            )
        )
    envejecer_backups(fresh_db, 25)
    assert service.ciclo(runtime).vigilancia == []
    envejecer_backups(fresh_db, 27)
    assert service.ciclo(runtime).vigilancia == ["SIN_BACKUP"]
    for _ in range(3):
        assert service.ciclo(runtime).vigilancia == []  # un solo aviso mientras siga así
    (correo,) = smtp[0].mensajes()
    assert correo["Subject"] == "[Inventario] ❌ Sin backups desde hace 27 horas"
    cuerpo = correo.get_content()
    assert "BACKUP_MAX_HORAS_SIN_BACKUP = 26" in cuerpo and "haga un backup a mano" in cuerpo
    # Vuelve a haber backup: el incidente se cierra; si otra vez faltan, otro aviso.
    assert correr(runtime, "backup_diario") == "OK"
    assert service.ciclo(runtime).resueltos == 1
    envejecer_backups(fresh_db, 30)
    assert service.ciclo(runtime).vigilancia == ["SIN_BACKUP"]


def test_health_degradado_cuando_un_canal_lleva_un_dia_sin_entregar(
    client: TestClient,
    webhook: Receptor,
    smtp: tuple[Buzon, int, Controller],
) -> None:
    runtime: Runtime = aplicacion(client).state.runtime
    r = client.get("/health").json()
    assert r["notificaciones"] == {"estado": "OK", "canales": 2}
    webhook.status = 503
    with runtime.session_factory() as session:
        from inventario.modules.notificaciones.service import create_notification

        create_notification(session, tipo="BACKUP", titulo="❌ Error", mensaje="m", semaforo="ROJO")
    service.ciclo(runtime)
    assert client.get("/health").json()["notificaciones"]["estado"] == "OK"  # falla, pero hace minutos
    with runtime.engine.begin() as conn:
        conn.execute(text("SET LOCAL inventario.restaurando = 'on'"))
        conn.execute(text("UPDATE envios SET fecha_creacion = now() - interval '25 hours'"))
    r = client.get("/health").json()
    assert r["estado"] == "DEGRADADO" and r["notificaciones"]["estado"] == "DEGRADADO"
    (caido,) = r["notificaciones"]["caidos"]
    assert (
        caido["canal"].startswith("json:") and "Sin poder entregar avisos" in r["notificaciones"]["mensaje"]
    )
    assert SECRETO not in str(r) and CLAVE_URL not in str(r)
    webhook.status = 200
    vencer_reintentos(runtime)
    service.ciclo(runtime)
    assert client.get("/health").json()["notificaciones"]["estado"] == "OK"


def test_un_job_que_no_corrio_a_su_hora_es_un_aviso_rojo_hasta_que_vuelve_a_correr(
    runtime: Runtime,
    smtp: tuple[Buzon, int, Controller],
) -> None:
    ahora = datetime.now(runtime.settings.tz)
    hace_10 = ahora - timedelta(minutes=10)
    runtime.settings = runtime.settings.model_copy(
        update={
            "ALERTAS_HOUR": hace_10.hour,
            "ALERTAS_MINUTE": hace_10.minute,
            "SCHEDULER_GRACIA_MIN": 1,
            # Solo alertas_diarias no corrió: el incremental (que tampoco tiene corridas) apagado.
            "BACKUP_INCREMENTAL_MINUTOS": 0,
        }
    )
    with runtime.engine.begin() as conn:
        # Ya había planificador (corridas anteriores); el backup está al día; la de hoy de
        # alertas_diarias nunca se hizo.
        conn.execute(
            text(
                "INSERT INTO ejecuciones_job (job_id, programada_para, fin, estado, instancia) VALUES "
                "('alertas_diarias', now() - interval '3 day', now() - interval '3 day', 'OK', 'h')"
            )
        )
        for job in JOBS:  # los demás jobs de todo el despliegue, al día
            if job.job_id != "alertas_diarias" and not job.por_maquina:
                conn.execute(
                    text(
                        "INSERT INTO ejecuciones_job (job_id, programada_para, fin, estado, instancia) "
                        "VALUES (:j, now(), now(), 'OK', 'h')"
                    ),
                    {"j": job.job_id},
                )
    assert service.vigilar_jobs(runtime) == ["JOB_NO_CORRIO:alertas_diarias"]
    service.ciclo(runtime)
    service.ciclo(runtime)
    (correo,) = smtp[0].mensajes()
    assert correo["Subject"] == "[Inventario] ❌ El job alertas_diarias no corrió a su hora"
    cuerpo = correo.get_content()
    assert "ya pasó el período de gracia" in cuerpo and "lance el job a mano" in cuerpo
    assert JobsService(runtime).run_now("alertas_diarias", "admin").estado == "OK"  # a mano: se cierra
    assert service.ciclo(runtime).resueltos == 1
    assert len(smtp[0].mensajes()) == 1
