"""`/api/v1/jobs` y la sección `scheduler` de `/health`, con el servicio real."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from inventario.config import Settings
from inventario.modules.backup.service import BACKUP_LOCK_KEY
from inventario.modules.planificador.service import JobsService
from inventario.postgres import DatabaseServer
from tests.backup_support import connect
from tests.conftest import ADMIN_PASSWORD, aplicacion, login

pytestmark = pytest.mark.usefixtures("restore_logging")  # el lifespan configura el logging

JOB_IDS = ["backup_diario", "backup_incremental", "logs_maintenance", "alertas_diarias"]


def test_requiere_token_y_rol_admin(client: TestClient, operador_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/jobs").status_code == 401
    assert client.post("/api/v1/jobs/alertas_diarias/ejecutar").status_code == 401
    r = client.get("/api/v1/jobs", headers=operador_headers)
    assert r.status_code == 403 and r.json() == {"detalle": "Se requiere el rol ADMIN"}
    assert client.post("/api/v1/jobs/alertas_diarias/ejecutar", headers=operador_headers).status_code == 403
    assert client.get("/api/v1/jobs/alertas_diarias/ejecuciones", headers=operador_headers).status_code == 403


def test_job_desconocido_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    for method, path in (
        ("GET", "/api/v1/jobs/no_existe"),
        ("POST", "/api/v1/jobs/no_existe/ejecutar"),
        ("GET", "/api/v1/jobs/no_existe/ejecuciones"),
    ):
        r = client.request(method, path, headers=admin_headers)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detalle"] == (
            "No existe el job 'no_existe'; los jobs son: backup_diario, backup_incremental, logs_maintenance, alertas_diarias"
        )


def test_listado_ejecucion_manual_e_historial(client: TestClient, admin_headers: dict[str, str]) -> None:
    r = client.get("/api/v1/jobs", headers=admin_headers)
    assert r.status_code == 200
    jobs = r.json()
    assert [j["job_id"] for j in jobs] == JOB_IDS
    backup, incremental, logs, alertas = jobs
    assert incremental["programacion"] == "cada 15 minutos" and incremental["cron"] == "*/15 * * * *"
    assert incremental["hora"] == "cada 15 min" and "BACKUP_INCREMENTAL_MINUTOS" in incremental["descripcion"]
    assert (
        backup["programacion"] == "todos los días 03:00 America/Mexico_City" and backup["cron"] == "0 3 * * *"
    )
    assert "COMPLETO los lunes" in backup["descripcion"]
    assert logs["programacion"] == "todos los días 04:00 America/Mexico_City"
    assert (
        alertas["programacion"] == "todos los días 06:00 America/Mexico_City" and alertas["hora"] == "06:00"
    )
    assert logs["ambito"].endswith(":" + str(aplicacion(client).state.settings.logs_dir))
    now = datetime.now(aplicacion(client).state.settings.tz)
    for job in jobs:
        assert job["ultima_ejecucion"] is None and job["estado"] == "OK" and not job["en_curso"]
        assert datetime.fromisoformat(job["proxima_ejecucion"]) > now

    with aplicacion(client).state.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO productos (codigo, nombre, stock_minimo) VALUES ('P1', 'Paracetamol', 3)")
        )
    r = client.post("/api/v1/jobs/alertas_diarias/ejecutar", headers=admin_headers)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["job_id"] == "alertas_diarias" and run["estado"] == "OK" and run["manual"] is True
    assert run["ejecutado_por"] == "admin" and run["fin"] is not None and run["duracion_segundos"] >= 0
    assert run["mensaje"].startswith("1 alerta nueva: ") and run["interrumpida"] is False

    r = client.post("/api/v1/jobs/backup_diario/ejecutar", headers=admin_headers)
    assert r.status_code == 200 and r.json()["estado"] == "OK", r.text
    assert r.json()["mensaje"].startswith(
        "Backup COMPLETO"
    )  # sin completo previo, el engine lo hace COMPLETO

    jobs = {j["job_id"]: j for j in client.get("/api/v1/jobs", headers=admin_headers).json()}
    assert jobs["alertas_diarias"]["ultima_ejecucion"]["id_ejecucion"] == run["id_ejecucion"]
    assert jobs["backup_diario"]["ultima_ejecucion"]["estado"] == "OK"
    assert jobs["logs_maintenance"]["ultima_ejecucion"] is None
    one = client.get("/api/v1/jobs/alertas_diarias", headers=admin_headers).json()
    assert one == jobs["alertas_diarias"]
    client.post("/api/v1/jobs/alertas_diarias/ejecutar", headers=admin_headers)
    history = client.get("/api/v1/jobs/alertas_diarias/ejecuciones?limit=1", headers=admin_headers).json()
    assert history["total"] == 2 and len(history["items"]) == 1
    assert history["items"][0]["mensaje"].startswith("0 alertas nuevas")  # la segunda no repite


def assert_en_la_zona(valor: str, settings: Settings) -> None:
    """La hora va con el desfase de ZONA_HORARIA en ese instante (no en UTC ni con `Z`)."""
    when = datetime.fromisoformat(valor)
    assert not valor.endswith("Z") and when.utcoffset() == when.astimezone(settings.tz).utcoffset(), valor


def test_proxima_ejecucion_en_la_zona_configurada(client: TestClient, admin_headers: dict[str, str]) -> None:
    """Todos los jobs, también el de cada N minutos, dan su próxima corrida en ZONA_HORARIA."""
    settings = aplicacion(client).state.settings
    assert settings.ZONA_HORARIA == "America/Mexico_City"  # desfase -06:00, distinto de UTC
    jobs = client.get("/api/v1/jobs", headers=admin_headers).json()
    assert [j["job_id"] for j in jobs] == JOB_IDS
    for job in jobs:
        assert_en_la_zona(job["proxima_ejecucion"], settings)
        one = client.get(f"/api/v1/jobs/{job['job_id']}", headers=admin_headers).json()
        assert_en_la_zona(one["proxima_ejecucion"], settings)


def test_409_si_ya_se_esta_ejecutando(
    client: TestClient, admin_headers: dict[str, str], fresh_db: DatabaseServer
) -> None:
    service = JobsService(aplicacion(client).state.runtime)
    key = service.lock_key(service.job("logs_maintenance"))
    holder = connect(fresh_db)
    holder.execute("SELECT pg_advisory_lock(%s, %s)", key)
    try:
        r = client.post("/api/v1/jobs/logs_maintenance/ejecutar", headers=admin_headers)
        assert r.status_code == 409
        assert r.json() == {
            "detalle": "El job logs_maintenance ya se está ejecutando; reintente cuando termine"
        }
    finally:
        holder.close()
    assert client.post("/api/v1/jobs/logs_maintenance/ejecutar", headers=admin_headers).status_code == 200


def test_health_degradado_si_la_ultima_corrida_fallo(
    client: TestClient, admin_headers: dict[str, str], fresh_db: DatabaseServer
) -> None:
    body = client.get("/health").json()
    section = body["scheduler"]
    assert body["estado"] == "OK" and section["estado"] == "OK" and section["activo"] is False
    assert [j["job_id"] for j in section["jobs"]] == JOB_IDS
    assert "serve --sin-scheduler" in section["mensaje"]
    # Un backup a mano con otro backup en curso: la corrida falla, queda registrada y avisa en ROJO.
    holder = connect(fresh_db)
    holder.execute("SELECT pg_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
    try:
        r = client.post("/api/v1/jobs/backup_diario/ejecutar", headers=admin_headers)
    finally:
        holder.close()
    assert r.status_code == 200 and r.json()["estado"] == "ERROR"
    body = client.get("/health").json()
    assert r.status_code == 200 and body["estado"] == "DEGRADADO"
    assert body["scheduler"]["estado"] == "DEGRADADO"
    assert body["scheduler"]["mensaje"].startswith(
        "backup_diario: la última corrida falló: No se hizo el backup"
    )
    backup = body["scheduler"]["jobs"][0]
    assert backup["estado"] == "DEGRADADO" and backup["ultima_ejecucion"]["estado"] == "ERROR"
    notes = client.get("/api/v1/notificaciones?semaforo=ROJO", headers=admin_headers).json()["items"]
    assert [n["titulo"] for n in notes] == ["❌ Error en el backup diario (backup_diario)"]
    # Cuando vuelve a correr bien, se recupera.
    assert client.post("/api/v1/jobs/backup_diario/ejecutar", headers=admin_headers).json()["estado"] == "OK"
    assert client.get("/health").json()["estado"] == "OK"


def test_health_con_el_planificador_en_marcha(settings: Settings, fresh_db: DatabaseServer) -> None:
    from inventario.main import create_app

    quiet = settings.model_copy(update={"BACKUP_ENABLED": False})
    with TestClient(create_app(quiet, server=fresh_db, with_scheduler=True)) as client:
        scheduler = aplicacion(client).state.scheduler
        assert scheduler.wait_startup(60) and scheduler.running
        body = client.get("/health").json()
        section = body["scheduler"]
        assert body["estado"] == "OK", body
        assert section["estado"] == "OK" and section["activo"] is True and "mensaje" not in section
        assert section["zona_horaria"] == "America/Mexico_City" and section["gracia_minutos"] == 720
        assert [j["job_id"] for j in section["jobs"]] == JOB_IDS
        now = datetime.now(quiet.tz)
        for job in section["jobs"]:
            assert datetime.fromisoformat(job["proxima_ejecucion"]) > now
            assert_en_la_zona(job["proxima_ejecucion"], quiet)
            assert job["programacion"].startswith(("todos los días ", "cada 15 minutos"))
        headers = login(client, "admin", ADMIN_PASSWORD)
        jobs = client.get("/api/v1/jobs", headers=headers).json()
        # Lo que la recuperación del arranque haya corrido (según la hora actual) terminó bien u omitido.
        for job in jobs:
            assert job["estado"] == "OK"
            if job["ultima_ejecucion"] is not None:
                assert job["ultima_ejecucion"]["estado"] in {"OK", "OMITIDO"}
                assert job["ultima_ejecucion"]["ejecutado_por"] == "RECUPERACION"
    # Al apagar, el planificador se detiene antes de cerrar la base.
    assert not scheduler.running
