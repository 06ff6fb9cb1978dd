"""Avisos fuera de la aplicación contra canales reales en loopback: SMTP (aiosmtpd) y un webhook
JSON (apprise `json://`). Un incidente, un mensaje por canal; resumen diario de los AMARILLOS;
reintentos que sobreviven a un reinicio; varias instancias sin duplicados; ningún secreto en logs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import text

from inventario.config import ConfigError, Settings, load_settings
from inventario.modules.alertas.service import generate_alerts
from inventario.modules.envios import canales as ch
from inventario.modules.envios import service
from inventario.modules.notificaciones.service import create_notification
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime, open_runtime
from tests.conftest import aplicacion, run_cli
from tests.crud_support import lot, product, today
from tests.envios_support import (  # fixtures de pytest
    CLAVE_URL,
    SECRETO,
    Receptor,
    envios,
    logs,
    settings,
    smtp,
    url_webhook,
    vencer_reintentos,
    webhook,
)
from tests.smtp_support import Buzon

pytestmark = pytest.mark.usefixtures("restore_logging")  # el lifespan configura el logging

NOTIF = "/api/v1/notificaciones"


def rojo_backup(runtime: Runtime, titulo: str = "❌ Error en Backup COMPLETO") -> int:
    with runtime.session_factory() as session:
        n = create_notification(
            session,
            tipo="BACKUP",
            titulo=titulo,
            mensaje="backup_completo_x.sql.gz: pg_dump terminó con código 1",
            semaforo="ROJO",
            referencia_tipo="BACKUP",
            referencia_id=1,
        )
        return n.id_notificacion


def ciclo(runtime: Runtime) -> service.ResultadoCiclo:
    return service.ciclo(runtime)


def completar_backup(runtime: Runtime) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO historial_backup (tipo, nombre_archivo, ruta_archivo, estado) "
                "VALUES ('COMPLETO', 'b.sql.gz', 'b.sql.gz', 'COMPLETADO')"
            )
        )


# ------------------------------------------------------------------ un incidente, un mensaje


def test_un_backup_fallido_es_un_email_y_una_llamada_al_webhook(
    runtime: Runtime, smtp: tuple[Buzon, int, Controller], webhook: Receptor
) -> None:
    buzon = smtp[0]
    rojo_backup(runtime)
    # El motor y el job avisan del mismo fallo: un solo incidente.
    rojo_backup(runtime, "❌ Error en el backup diario (backup_diario)")
    resultado = ciclo(runtime)
    assert resultado.planificadas == {"ENVIO": 1, "DUPLICADA": 1}
    ciclo(runtime)  # otra vuelta no repite nada

    (msg,) = buzon.mensajes()
    assert msg["Subject"] == "[Inventario] ❌ Error en Backup COMPLETO"
    assert sorted(buzon.recibidos[0][1]) == ["duenia@farmacia.com", "encargado@farmacia.com"]
    cuerpo = msg.get_content()
    assert "pg_dump terminó con código 1" in cuerpo and "Qué hacer:" in cuerpo
    (llamada,) = webhook.recibidas("POST")
    assert llamada.ruta.startswith(f"/hook/{SECRETO}")
    assert llamada.cuerpo["title"] == "[Inventario] ❌ Error en Backup COMPLETO"
    assert llamada.cuerpo["type"] == "failure"
    assert "pg_dump terminó con código 1" in llamada.cuerpo["message"]
    assert {(e.canal.split(":")[0], e.estado, e.intentos) for e in envios(runtime)} == {
        ("email", "ENVIADA", 1),
        ("json", "ENVIADA", 1),
    }

    # Mientras no haya un backup bueno, otro fallo no se vuelve a enviar; después, sí.
    rojo_backup(runtime)
    assert ciclo(runtime).planificadas == {"DUPLICADA": 1}
    completar_backup(runtime)
    rojo_backup(runtime)
    resultado = ciclo(runtime)
    assert resultado.resueltos == 1 and resultado.planificadas == {"ENVIO": 1}
    assert len(buzon.mensajes()) == 2 and len(webhook.recibidas("POST")) == 2


def test_varias_instancias_envian_un_solo_mensaje_por_incidente(
    settings: Settings, fresh_db: DatabaseServer, smtp: tuple[Buzon, int, Controller], webhook: Receptor
) -> None:
    """Tres "réplicas" (cada una con su motor) planifican y entregan a la vez."""
    replicas = [open_runtime(settings, fresh_db, migrate=False) for _ in range(3)]
    try:
        for _ in range(6):
            rojo_backup(replicas[0])
        with replicas[0].session_factory() as session:
            for i in range(4):  # otro incidente por producto: 4 mensajes más
                create_notification(
                    session,
                    tipo="STOCK_BAJO",
                    titulo=f"Sin stock: producto {i}",
                    mensaje=f"El producto {i} no tiene stock",
                    semaforo="ROJO",
                    referencia_tipo="PRODUCTO",
                    referencia_id=1000 + i,
                )
        barrera = threading.Barrier(len(replicas))
        errores: list[BaseException] = []

        def correr(rt: Runtime) -> None:
            try:
                barrera.wait(10)
                for _ in range(3):
                    service.ciclo(rt)
            except BaseException as exc:  # la prueba falla abajo con el error real
                errores.append(exc)

        hilos = [threading.Thread(target=correr, args=(rt,)) for rt in replicas]
        for h in hilos:
            h.start()
        for h in hilos:
            h.join(120)
        assert not errores, errores
    finally:
        for rt in replicas:
            rt.close()
    asuntos = sorted(m["Subject"] for m in smtp[0].mensajes())
    assert len(asuntos) == 5, asuntos
    assert asuntos.count("[Inventario] ❌ Error en Backup COMPLETO") == 1
    assert sorted(p.cuerpo["title"] for p in webhook.recibidas("POST")) == asuntos


# ------------------------------------------------------------------ resumen diario


def test_el_resumen_diario_agrupa_los_amarillos_y_los_rojos_salen_aparte(
    runtime: Runtime, smtp: tuple[Buzon, int, Controller], webhook: Receptor
) -> None:
    hoy = today(runtime)
    with runtime.engine.begin() as conn:
        ibuprofeno = product(conn, "IBU", "Ibuprofeno 400", stock_minimo=50)
        lot(conn, ibuprofeno, "L-1", hoy + timedelta(days=5), 10)  # por vencer y bajo mínimo
        amoxi = product(conn, "AMX", "Amoxicilina 500", stock_minimo=1)
        lot(conn, amoxi, "L-2", hoy + timedelta(days=20), 3)  # por vencer
        lot(conn, amoxi, "L-3", hoy - timedelta(days=2), 4)  # vencido: ROJO
    generate_alerts(runtime.engine, 30)
    ciclo(runtime)
    (rojo,) = smtp[0].mensajes()
    assert rojo["Subject"] == "[Inventario] Lote vencido: Amoxicilina 500"
    assert "Retire el lote" in rojo.get_content()

    with runtime.session_factory() as session:
        mensaje = service.resumen_diario(session, runtime.settings)
        assert mensaje is not None
        assert service.resumen_diario(session, runtime.settings) is None  # nada nuevo: nada que enviar
    ciclo(runtime)
    correos = smtp[0].mensajes()
    assert len(correos) == 2
    resumen = correos[1]
    assert resumen["Subject"] == f"[Inventario] Resumen del {hoy:%d/%m/%Y}: 3 avisos"
    cuerpo = resumen.get_content()
    assert "Lotes por vencer (2):" in cuerpo and "Productos bajo el stock mínimo (1):" in cuerpo
    assert "L-1" in cuerpo and "L-2" in cuerpo and "L-3" not in cuerpo
    llamadas = webhook.recibidas("POST")
    assert [p.cuerpo["title"] for p in llamadas] == [rojo["Subject"], resumen["Subject"]]
    assert llamadas[1].cuerpo["type"] == "warning"


def test_semaforo_minimo_rojo_deja_fuera_el_resumen(
    runtime: Runtime, smtp: tuple[Buzon, int, Controller], webhook: Receptor
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"NOTIFICACIONES_SEMAFORO_MINIMO": "ROJO"})
    with runtime.session_factory() as session:
        for semaforo in ("VERDE", "AMARILLO"):
            create_notification(session, tipo="AVISO", titulo="t", mensaje="m", semaforo=semaforo)
        assert service.planificar(session, runtime.settings) == {"OMITIDA": 2}
        assert service.resumen_diario(session, runtime.settings) is None
    ciclo(runtime)
    assert smtp[0].recibidos == [] and webhook.recibidas() == []


def test_sin_canales_nada_queda_pendiente(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={"NOTIFICACIONES_EMAIL": None, "NOTIFICACIONES_URLS": None}
    )
    rojo_backup(runtime)
    assert ciclo(runtime).planificadas == {"OMITIDA": 1}
    assert envios(runtime) == []


# ------------------------------------------------------------------ reintentos


def test_un_canal_caido_se_reintenta_y_entrega_al_volver_tambien_tras_reiniciar(
    settings: Settings,
    fresh_db: DatabaseServer,
    smtp: tuple[Buzon, int, Controller],
    webhook: Receptor,
    logs: Callable[[], str],
) -> None:
    buzon, port, controller = smtp
    controller.stop()  # el servidor de correo no responde
    webhook.status = 503  # y el webhook rechaza
    runtime = open_runtime(settings, fresh_db, migrate=False)
    try:
        rojo_backup(runtime)
        ciclo(runtime)
        filas = envios(runtime)
        assert [(e.estado, e.intentos) for e in filas] == [("ERROR", 1), ("ERROR", 1)]
        assert "127.0.0.1" in filas[0].ultimo_error  # dice qué servidor de correo falló
        assert "503" in filas[1].ultimo_error
        with runtime.engine.connect() as conn:
            espera = conn.execute(text("SELECT min(proximo_intento) - now() FROM envios")).scalar_one()
        assert espera > timedelta(seconds=20)  # con espera: el ciclo siguiente no insiste
        ciclo(runtime)
        assert [e.intentos for e in envios(runtime)] == [1, 1]
        vencer_reintentos(runtime)
        ciclo(runtime)  # sigue caído: segundo intento, espera mayor
        assert [(e.estado, e.intentos) for e in envios(runtime)] == [("ERROR", 2), ("ERROR", 2)]
    finally:
        runtime.close()

    # "Reinicio": otro proceso (otro motor) con los canales de vuelta encuentra el trabajo en la base.
    controller2 = Controller(buzon, hostname="127.0.0.1", port=port)
    controller2.start()
    webhook.status = 200
    runtime = open_runtime(settings, fresh_db, migrate=False)
    try:
        vencer_reintentos(runtime)
        ciclo(runtime)
        assert [(e.estado, e.intentos, e.ultimo_error) for e in envios(runtime)] == [
            ("ENVIADA", 3, None),
            ("ENVIADA", 3, None),
        ]
    finally:
        runtime.close()
        controller2.stop()
    assert len(buzon.mensajes()) == 1 and len(webhook.recibidas("POST")) == 1
    texto = logs()
    assert "intento 2 falló" in texto and "Aviso 1 enviado" in texto
    assert SECRETO not in texto and CLAVE_URL not in texto


def test_un_canal_que_ya_no_esta_configurado_se_descarta(runtime: Runtime, webhook: Receptor) -> None:
    webhook.status = 503
    rojo_backup(runtime)
    ciclo(runtime)
    runtime.settings = runtime.settings.model_copy(update={"NOTIFICACIONES_URLS": None})
    vencer_reintentos(runtime)
    ciclo(runtime)
    assert {(e.canal, e.estado) for e in envios(runtime)} == {
        ("email", "ENVIADA"),
        (envios(runtime)[1].canal, "DESCARTADA"),
    }


@given(st.integers(min_value=1, max_value=10_000))
def test_la_espera_crece_y_tiene_tope(intentos: int) -> None:
    assert service.espera(intentos) <= service.espera(intentos + 1) <= service.ESPERA_MAX
    assert service.espera(intentos) >= service.ESPERA_BASE


# ------------------------------------------------------------------ secretos


def test_ningun_secreto_de_la_url_en_logs_errores_ni_descripciones(
    runtime: Runtime, webhook: Receptor, logs: Callable[[], str]
) -> None:
    webhook.status = 500
    (canal_json,) = [c for c in ch.canales(runtime.settings) if c.clase == "apprise"]
    visibles = [canal_json.id, canal_json.destino, repr(canal_json), str(canal_json)]
    assert canal_json.destino == f"json://avisos:****@{webhook.base()}"
    rojo_backup(runtime)
    ciclo(runtime)
    (error,) = [e.ultimo_error for e in envios(runtime) if e.canal == canal_json.id]
    assert "500" in error
    webhook.status = 200
    vencer_reintentos(runtime)
    ciclo(runtime)
    texto_logs = logs()
    assert '"POST ***?X-Token=*** HTTP/1.1" 200' in texto_logs  # urllib3 (DEBUG) escribió la ruta, tapada
    for texto in [*visibles, error, texto_logs]:
        assert SECRETO not in texto and CLAVE_URL not in texto, texto


def test_una_url_apprise_invalida_es_un_error_claro_sin_la_url(runtime: Runtime) -> None:
    url = f"noexiste://{SECRETO}@host"
    runtime.settings = runtime.settings.model_copy(update={"NOTIFICACIONES_URLS": SecretStr(url)})
    (canal,) = [c for c in ch.canales(runtime.settings) if c.clase == "apprise"]
    assert SECRETO not in canal.destino
    with pytest.raises(ch.EnvioFallido) as exc:
        ch.entregar(runtime.settings, canal, "a", "b", "ROJO")
    assert "no es una URL válida de apprise" in exc.value.mensaje and SECRETO not in exc.value.mensaje


# ------------------------------------------------------------------ configuración


def test_configuracion_de_avisos_valida_y_normaliza(settings: Settings) -> None:
    def crear(**valores: str) -> Settings:
        return Settings(_env_file=None, SECRET_KEY="x" * 40, **valores)  # type: ignore[arg-type]  # valores de prueba de tipos variados, como los daría el entorno

    s = crear(
        NOTIFICACIONES_EMAIL=" a@b.com;c@d.com ",
        NOTIFICACIONES_SEMAFORO_MINIMO="rojo",
        NOTIFICACIONES_URLS=" ",
    )
    assert s.NOTIFICACIONES_EMAIL == "a@b.com, c@d.com"
    assert s.NOTIFICACIONES_SEMAFORO_MINIMO == "ROJO" and s.NOTIFICACIONES_URLS is None
    assert s.BACKUP_MAX_HORAS_SIN_BACKUP == 26 and s.METRICAS_HABILITADAS is False
    with pytest.raises(ValueError, match="dirección de email inválida"):
        crear(NOTIFICACIONES_EMAIL="a@b.com, no-es-email")
    # El mensaje de arranque (load_settings) no repite la URL: lleva la clave del chequeo.
    with pytest.raises(ConfigError, match=r"BACKUP_PING_URL.*http") as exc:
        load_settings(_env_file=None, SECRET_KEY="x" * 40, BACKUP_PING_URL=f"ftp://hc-ping.com/{SECRETO}")
    assert SECRETO not in str(exc.value)
    s = crear(BACKUP_PING_URL=f"https://hc-ping.com/{SECRETO}/")
    assert ch.ping_url(s, True) == f"https://hc-ping.com/{SECRETO}/"
    assert ch.ping_url(s, False) == f"https://hc-ping.com/{SECRETO}/fail"
    s = crear(
        BACKUP_PING_URL="https://kuma/api/push/abc?status=up",
        BACKUP_PING_URL_FALLO="https://kuma/api/push/abc?status=down",
    )
    assert ch.ping_url(s, False) == "https://kuma/api/push/abc?status=down"


# ------------------------------------------------------------------ prueba de canales


def test_probar_por_api_dice_que_paso_en_cada_canal_sin_secretos(
    client: TestClient,
    admin_headers: dict[str, str],
    operador_headers: dict[str, str],
    smtp: tuple[Buzon, int, Controller],
    webhook: Receptor,
    logs: Callable[[], str],
) -> None:
    assert client.post(f"{NOTIF}/probar").status_code == 401
    assert client.post(f"{NOTIF}/probar", headers=operador_headers).status_code == 403
    r = client.post(f"{NOTIF}/probar", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["enviados"] == 2 and r.json()["fallidos"] == 0
    (correo,) = smtp[0].mensajes()
    assert correo["Subject"] == service.ASUNTO_PRUEBA and "pedido por admin" in correo.get_content()
    (llamada,) = webhook.recibidas("POST")
    assert llamada.cuerpo["title"] == service.ASUNTO_PRUEBA and llamada.cuerpo["type"] == "info"

    webhook.status = 503
    r = client.post(f"{NOTIF}/probar", headers=admin_headers)
    cuerpo = r.json()
    assert r.status_code == 200 and cuerpo["enviados"] == 1 and cuerpo["fallidos"] == 1
    (fallo,) = [c for c in cuerpo["canales"] if not c["enviado"]]
    assert fallo["canal"].startswith("json:") and "503" in fallo["detalle"]
    assert fallo["destino"] == f"json://avisos:****@{webhook.base()}"
    for texto in (r.text, logs()):
        assert SECRETO not in texto and CLAVE_URL not in texto


def test_probar_sin_canales_409_en_espanol(
    settings: Settings, fresh_db: DatabaseServer, admin_headers: dict[str, str]
) -> None:
    from inventario.main import create_app

    vacio = settings.model_copy(update={"NOTIFICACIONES_EMAIL": None, "NOTIFICACIONES_URLS": None})
    with TestClient(create_app(vacio, server=fresh_db, with_scheduler=False)) as client:
        r = client.post(f"{NOTIF}/probar", headers=admin_headers)
    assert r.status_code == 409 and "NOTIFICACIONES_URLS" in r.json()["detalle"]


def test_probar_por_consola(
    cli_env: dict[str, str], settings: Settings, smtp: tuple[Buzon, int, Controller], webhook: Receptor
) -> None:
    env = {
        **cli_env,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp[1]),
        "SMTP_TLS": "none",
        "SMTP_REMITENTE": "inventario@empresa.com",
        "NOTIFICACIONES_EMAIL": "duenia@farmacia.com",
        "NOTIFICACIONES_URLS": url_webhook(webhook),
    }
    r = run_cli(env, "notificaciones", "probar")
    assert r.returncode == 0, r.stderr
    assert "2 de 2 canales recibieron" in r.stdout and len(smtp[0].mensajes()) == 1
    webhook.status = 500
    r = run_cli(env, "notificaciones", "probar")
    assert r.returncode == 1 and "ERROR    json:" in r.stdout and "500" in r.stdout
    assert SECRETO not in r.stdout + r.stderr and CLAVE_URL not in r.stdout + r.stderr
    r = run_cli({**env, "NOTIFICACIONES_EMAIL": "", "NOTIFICACIONES_URLS": ""}, "notificaciones", "probar")
    assert r.returncode == 2 and "No hay canales de avisos configurados" in r.stderr


def test_el_ping_con_token_corto_tampoco_queda_en_los_logs(
    runtime: Runtime, webhook: Receptor, logs: Callable[[], str]
) -> None:
    """Uptime Kuma: el token va en la ruta y es corto (`/api/push/AbC123?status=up`)."""
    s = runtime.settings.model_copy(
        update={
            "BACKUP_PING_URL": SecretStr(f"http://{webhook.base()}/api/push/Kx9Q2a?status=up&msg=OK"),
            "BACKUP_PING_URL_FALLO": SecretStr(f"http://{webhook.base()}/api/push/Kx9Q2a?status=down"),
        }
    )
    canal = ch.canal_por_id(s, ch.PING)
    assert canal is not None
    ch.entregar(s, canal, "ping", "OK", "VERDE")
    webhook.status = 500
    with pytest.raises(ch.EnvioFallido) as exc:
        ch.entregar(s, canal, "ping", "FALLO", "ROJO")
    assert [p.ruta for p in webhook.recibidas()] == ["/api/push/Kx9Q2a?status=up&msg=OK"]
    assert "500" in exc.value.mensaje and "Kx9Q2a" not in exc.value.mensaje
    assert "Kx9Q2a" not in logs()


def test_migracion_ida_y_vuelta_y_lo_anterior_no_se_envia(runtime: Runtime) -> None:
    """Configurar un canal no manda la historia entera: lo que ya existía queda OMITIDA."""
    from alembic import command

    from inventario import migrations

    rojo_backup(runtime)
    cfg = migrations.alembic_config()
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "e5a9c3d1f402")
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('envios')")).scalar() is None
    migrations.upgrade(runtime.engine)
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT envio FROM notificaciones")).scalars().all() == ["OMITIDA"]
    rojo_backup(runtime)  # lo nuevo nace PENDIENTE y sale
    assert ciclo(runtime).planificadas == {"ENVIO": 1}


def test_enviar_por_consola_sin_servicio(
    cli_env: dict[str, str], runtime: Runtime, smtp: tuple[Buzon, int, Controller], webhook: Receptor
) -> None:
    env = {
        **cli_env,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp[1]),
        "SMTP_TLS": "none",
        "SMTP_REMITENTE": "inventario@empresa.com",
        "NOTIFICACIONES_EMAIL": "duenia@farmacia.com",
        "NOTIFICACIONES_URLS": url_webhook(webhook),
    }
    rojo_backup(runtime)
    webhook.status = 503
    r = run_cli(env, "notificaciones", "enviar")
    assert r.returncode == 1, r.stderr
    assert "1 ENVIO" in r.stdout and "en ERROR: 1" in r.stdout
    assert len(smtp[0].mensajes()) == 1 and SECRETO not in r.stdout + r.stderr
    webhook.status = 200
    vencer_reintentos(runtime)
    r = run_cli(env, "notificaciones", "enviar")
    assert r.returncode == 0 and "en ERROR: 0" in r.stdout
    assert len(webhook.recibidas("POST")) == 1 and len(smtp[0].mensajes()) == 1


def test_un_resumen_con_muchos_avisos_se_acorta_por_grupo(
    runtime: Runtime, smtp: tuple[Buzon, int, Controller]
) -> None:
    with runtime.session_factory() as session:
        for i in range(service.LINEAS_POR_GRUPO + 12):
            create_notification(
                session,
                tipo="STOCK_BAJO",
                titulo="t",
                mensaje=f"Quedan 2 de producto {i:03d}",
                semaforo="AMARILLO",
            )
        assert service.resumen_diario(session, runtime.settings) is not None
    ciclo(runtime)
    (correo,) = smtp[0].mensajes()
    cuerpo = correo.get_content()
    assert f"Productos bajo el stock mínimo ({service.LINEAS_POR_GRUPO + 12}):" in cuerpo
    assert "producto 000" in cuerpo and f"producto {service.LINEAS_POR_GRUPO:03d}" not in cuerpo
    assert "… y 12 más (GET /api/v1/notificaciones?tipo=STOCK_BAJO)" in cuerpo


def test_el_estado_del_envio_de_una_notificacion_por_la_api(
    client: TestClient,
    admin_headers: dict[str, str],
    operador_headers: dict[str, str],
    smtp: tuple[Buzon, int, Controller],
    webhook: Receptor,
) -> None:
    runtime: Runtime = aplicacion(client).state.runtime
    webhook.status = 503
    id_n = rojo_backup(runtime)
    r = client.get(f"{NOTIF}/{id_n}/envios", headers=operador_headers)
    assert r.status_code == 200 and r.json()["envio"] == "PENDIENTE" and r.json()["canales"] == []
    ciclo(runtime)
    r = client.get(f"{NOTIF}/{id_n}/envios", headers=operador_headers)
    cuerpo = r.json()
    assert cuerpo["envio"] == "ENVIO" and cuerpo["clave_incidente"] == "BACKUP"
    por_canal = {c["canal"].split(":")[0]: c for c in cuerpo["canales"]}
    assert por_canal["email"]["estado"] == "ENVIADA" and por_canal["email"]["fecha_envio"]
    json_ = por_canal["json"]
    assert json_["estado"] == "ERROR" and json_["intentos"] == 1 and "503" in json_["ultimo_error"]
    assert json_["proximo_intento"] and json_["destino"] == f"json://avisos:****@{webhook.base()}"
    assert SECRETO not in r.text and CLAVE_URL not in r.text
    duplicada = rojo_backup(runtime)
    ciclo(runtime)
    assert client.get(f"{NOTIF}/{duplicada}/envios", headers=admin_headers).json()["envio"] == "DUPLICADA"
    assert client.get(f"{NOTIF}/999999/envios", headers=admin_headers).status_code == 404
    assert client.get(f"{NOTIF}/{id_n}/envios").status_code == 401


def test_el_aviso_de_arranque_nombra_los_canales_sin_secretos(settings: Settings, webhook: Receptor) -> None:
    from inventario.arranque import describir_avisos

    con_todo = settings.model_copy(
        update={
            "BACKUP_PING_URL": SecretStr(f"https://hc-ping.com/{SECRETO}"),
            "METRICAS_HABILITADAS": True,
            "METRICAS_TOKEN": SecretStr("t" * 20),
        }
    )
    texto = describir_avisos(con_todo)
    assert texto == (
        f"duenia@farmacia.com, encargado@farmacia.com, json://avisos:****@{webhook.base()}; "
        "ping de backups configurado; métricas en /metrics con token"
    )
    vacio = settings.model_copy(update={"NOTIFICACIONES_EMAIL": None, "NOTIFICACIONES_URLS": None})
    assert describir_avisos(vacio).startswith("sin canales")
