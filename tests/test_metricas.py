"""`/metrics`: apagado por defecto, token, formato que lee el parser de prometheus_client, cifras
de backups iguales al catálogo, iguales en dos réplicas, y HTTP por plantilla de ruta."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from inventario.config import Settings
from inventario.modules.metricas.service import ColectorBase
from inventario.postgres import DatabaseServer
from tests.backup_support import API, backup, fill
from tests.conftest import ADMIN_PASSWORD, aplicacion, login

TOKEN = "metricas-token-de-prueba-123"
H = dict[str, str]
Muestras = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"METRICAS_HABILITADAS": True, "METRICAS_TOKEN": SecretStr(TOKEN)})


def app_client(settings: Settings, server: DatabaseServer) -> TestClient:
    from inventario.main import create_app

    return TestClient(create_app(settings, server=server, with_scheduler=False))


def leer(client: TestClient) -> Muestras:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def de_la_base(muestras: Muestras) -> Muestras:
    return {k: v for k, v in muestras.items() if not k[0].startswith("inventario_http_")}


def test_apagado_por_defecto_404_en_espanol(settings: Settings, fresh_db: DatabaseServer) -> None:
    apagado = settings.model_copy(update={"METRICAS_HABILITADAS": False})
    with app_client(apagado, fresh_db) as client:
        r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404
    assert "METRICAS_HABILITADAS" in r.json()["detalle"]


def test_el_token_se_exige_y_no_aparece_en_la_respuesta(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer otro"}, {"Authorization": TOKEN}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401, r.text
        assert "METRICAS_TOKEN" in r.json()["detalle"] and TOKEN not in r.text
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and TOKEN not in r.text
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_sin_token_configurado_responde_sin_cabecera(settings: Settings, fresh_db: DatabaseServer) -> None:
    abierto = settings.model_copy(update={"METRICAS_TOKEN": None})
    with app_client(abierto, fresh_db) as client:
        assert client.get("/metrics").status_code == 200


def test_cifras_de_backups_como_el_catalogo_e_iguales_en_dos_replicas(
    settings: Settings, fresh_db: DatabaseServer
) -> None:
    with app_client(settings, fresh_db) as a, app_client(settings, fresh_db) as b:
        headers = login(a, "admin", ADMIN_PASSWORD)
        fill(fresh_db)
        completo = backup(a, headers)
        diferencial = backup(a, headers, "/ejecutar-diferencial")
        with aplicacion(a).state.engine.begin() as conn:  # un backup fallido en el catálogo
            conn.execute(
                text(
                    "INSERT INTO historial_backup (tipo, nombre_archivo, ruta_archivo, estado, mensaje_error) "
                    "VALUES ('COMPLETO', 'x.sql.gz', 'x.sql.gz', 'ERROR', 'disco lleno')"
                )
            )
        catalogo = a.get(f"{API}/listar", params={"limit": 100}, headers=headers).json()["items"]
        m = leer(a)
        assert de_la_base(m) == de_la_base(leer(b))  # la otra réplica, sin haber hecho nada, igual

        for hecho in (completo, diferencial):
            tipo = (("tipo", hecho["tipo"]),)
            assert m[("inventario_backup_ultimo_tamanio_bytes", tipo)] == hecho["tamanio_bytes"]
            assert m[("inventario_backup_ultimo_duracion_segundos", tipo)] == pytest.approx(
                hecho["duracion_segundos"]
            )
        assert (
            m[("inventario_backup_ultimo_exito_timestamp_seconds", (("tipo", "DIFERENCIAL"),))]
            >= m[("inventario_backup_ultimo_exito_timestamp_seconds", (("tipo", "COMPLETO"),))]
        )
        for estado in ("COMPLETADO", "ERROR", "EN_PROCESO"):
            esperado = sum(1 for fila in catalogo if fila["estado"] == estado)
            assert m[("inventario_backups", (("estado", estado),))] == esperado
        assert m[("inventario_backups", (("estado", "ERROR"),))] == 1
        # Las notificaciones de los backups (VERDE) también se cuentan.
        assert m[("inventario_notificaciones", (("semaforo", "VERDE"),))] >= 2
        assert m[("inventario_base_datos_disponible", ())] == 1


def test_jobs_lotes_y_avisos_desde_la_base(client: TestClient, fresh_db: DatabaseServer) -> None:
    engine = aplicacion(client).state.engine
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ejecuciones_job (job_id, programada_para, inicio, fin, estado, instancia) VALUES "
                "('alertas_diarias', now() - interval '2 day', now() - interval '2 day', now() - interval '2 day', 'OK', 'h'), "
                "('alertas_diarias', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', 'ERROR', 'h')"
            )
        )
        pid = conn.execute(
            text("INSERT INTO productos (codigo, nombre) VALUES ('P1', 'Uno') RETURNING id_producto")
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO lotes (id_producto, codigo_lote, fecha_vencimiento, cantidad) VALUES "
                "(:p, 'A', CURRENT_DATE + 3, 5), (:p, 'B', CURRENT_DATE - 1, 2), (:p, 'C', CURRENT_DATE + 400, 1)"
            ),
            {"p": pid},
        )
        conn.execute(
            text(
                "INSERT INTO mensajes_salida (clave, tipo, semaforo, asunto, cuerpo) VALUES ('k', 'ALERTA', 'ROJO', 'a', 'b');"
                "INSERT INTO envios (id_mensaje, canal, estado, intentos) VALUES "
                "(1, 'email', 'ENVIADA', 3), (1, 'json:abc', 'ERROR', 4)"
            )
        )
        dos_dias = conn.execute(
            text("SELECT extract(epoch FROM min(inicio)) FROM ejecuciones_job")
        ).scalar_one()
    m = leer(client)
    job = (("job_id", "alertas_diarias"),)
    assert m[("inventario_job_ultimo_exito_timestamp_seconds", job)] == pytest.approx(float(dos_dias))
    assert m[("inventario_job_ultima_ejecucion_timestamp_seconds", job)] > float(dos_dias)
    assert m[("inventario_job_ultimo_resultado", (("estado", "ERROR"), *job))] == 1
    assert m[("inventario_job_ultimo_resultado", (("estado", "OK"), *job))] == 0
    assert m[("inventario_lotes_por_vencer", ())] == 1
    assert m[("inventario_lotes_vencidos_con_stock", ())] == 1
    assert m[("inventario_avisos_intentos_fallidos_total", (("canal", "email"),))] == 2
    assert m[("inventario_avisos_intentos_fallidos_total", (("canal", "json:abc"),))] == 4
    assert m[("inventario_avisos_envios", (("canal", "json:abc"), ("estado", "ERROR")))] == 1


def test_http_por_plantilla_de_ruta_no_por_ruta_real(client: TestClient, admin_headers: H) -> None:
    for i in (1, 2, 3):
        client.get(f"/api/v1/productos/{i}", headers=admin_headers)
    client.get("/no/existe/123")
    m = leer(client)
    plantilla = "/api/v1/productos/{id_producto}"
    claves = {k for k in m if k[0] == "inventario_http_peticiones_total"}
    assert (
        m[("inventario_http_peticiones_total", (("estado", "404"), ("metodo", "GET"), ("ruta", plantilla)))]
        == 3
    )
    assert m[("inventario_http_duracion_segundos_count", (("metodo", "GET"), ("ruta", plantilla)))] == 3
    assert (
        "inventario_http_peticiones_total",
        (("estado", "404"), ("metodo", "GET"), ("ruta", "sin_ruta")),
    ) in claves
    assert not any("/1" in dict(labels)["ruta"] or "/no/" in dict(labels)["ruta"] for _, labels in claves)


def test_sin_base_la_lectura_responde_y_lo_dice(settings: Settings) -> None:
    roto = create_engine("postgresql+psycopg://nadie@127.0.0.1:1/nada", connect_args={"connect_timeout": 2})
    registro = CollectorRegistry(auto_describe=False)
    registro.register(ColectorBase(roto, settings))
    (familia,) = text_string_to_metric_families(generate_latest(registro).decode())
    assert familia.name == "inventario_base_datos_disponible" and familia.samples[0].value == 0


def test_copia_fuera_del_sitio_estado_ultima_copia_y_atraso(
    settings: Settings, fresh_db: DatabaseServer
) -> None:
    remoto = settings.model_copy(update={"BACKUP_REMOTO": "nube:inventario"})
    with app_client(remoto, fresh_db) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL inventario.restaurando = 'on'"))  # los triggers respetan las fechas
            ids = (
                conn.execute(
                    text(
                        "INSERT INTO historial_backup (tipo, nombre_archivo, ruta_archivo, estado, fecha_creacion) VALUES "
                        "('COMPLETO', 'a', 'a', 'COMPLETADO', now() - interval '50 hours'), "
                        "('COMPLETO', 'b', 'b', 'COMPLETADO', now() - interval '30 hours') RETURNING id_backup"
                    )
                )
                .scalars()
                .all()
            )
            conn.execute(
                text(
                    "INSERT INTO copia_remota (id_backup, estado, fecha_copia) VALUES "
                    "(:a, 'COPIADO', now() - interval '49 hours'), (:b, 'ERROR', NULL)"
                ),
                {"a": ids[0], "b": ids[1]},
            )
        m = leer(client)
        assert m[("inventario_offsite_configurado", ())] == 1
        assert m[("inventario_offsite_copias", (("estado", "COPIADO"),))] == 1
        assert m[("inventario_offsite_copias", (("estado", "ERROR"),))] == 1
        assert m[("inventario_offsite_copias", (("estado", "PENDIENTE"),))] == 0
        assert 30 * 3600 <= m[("inventario_offsite_atraso_segundos", ())] < 31 * 3600
        with engine.connect() as conn:
            hace_49 = conn.execute(
                text("SELECT extract(epoch FROM max(fecha_copia)) FROM copia_remota")
            ).scalar_one()
        assert m[("inventario_offsite_ultima_copia_timestamp_seconds", ())] == pytest.approx(float(hace_49))
        with engine.begin() as conn:  # se pone al día
            conn.execute(text("UPDATE copia_remota SET estado = 'COPIADO', fecha_copia = now()"))
        assert leer(client)[("inventario_offsite_atraso_segundos", ())] == 0


def test_sin_copia_fuera_del_sitio_solo_lo_dice(client: TestClient) -> None:
    m = leer(client)
    assert m[("inventario_offsite_configurado", ())] == 0
    assert not any(k[0].startswith("inventario_offsite_copias") for k in m)
