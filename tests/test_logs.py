"""Los cuatro archivos de log: destino de cada registro, rotación con fecha sin pisar nada y
ningún secreto escrito."""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inventario import logging_setup, migrations
from inventario.database import make_engine
from inventario.logging_setup import DatedDailyHandler, DatedSizeRotatingHandler, setup_logging
from inventario.postgres import DatabaseServer
from tests.backup_support import drop_database, new_database

SPECIAL = ("", "inventario.health", "inventario.sesiones", "uvicorn.access")


pytestmark = pytest.mark.usefixtures("restore_logging")  # el logging vuelve a como estaba (conftest)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("prueba", level, __file__, 1, message, None, None)


def test_rotacion_por_tamano_con_fecha_sin_pisar_ni_perder(tmp_path: Path) -> None:
    today = date.today().isoformat()
    # Un rotado de hoy ya comprimido por el mantenimiento: su nombre tampoco se reutiliza.
    (tmp_path / f"app.log.{today}.gz").write_bytes(b"comprimido")
    handler = DatedSizeRotatingHandler(str(tmp_path / "app.log"), maxBytes=200, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for n in range(40):
            handler.handle(record(f"línea número {n:03d} con algo de texto"))
    finally:
        handler.close()
    rotated = sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith("app.log.") and p.suffix != ".gz"
    )
    assert len(rotated) >= 2  # al menos dos rotaciones el mismo día
    day = re.escape(date.today().isoformat())  # hoy, por si la prueba cruzó la medianoche
    for name in rotated:
        assert re.fullmatch(rf"app\.log\.({re.escape(today)}|{day})\.\d+", name), name
    assert (tmp_path / f"app.log.{today}.gz").read_bytes() == b"comprimido"
    everything = [line for p in tmp_path.glob("app.log*") if p.suffix != ".gz" for line in lines(p)]
    assert sorted(everything) == [f"línea número {n:03d} con algo de texto" for n in range(40)]
    for p in tmp_path.glob("app.log*"):
        if p.suffix != ".gz":
            assert p.stat().st_size <= 200


def test_rotacion_por_tamano_sin_gz_usa_la_fecha_y_luego_punto_uno(tmp_path: Path) -> None:
    handler = DatedSizeRotatingHandler(str(tmp_path / "app.log"), maxBytes=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for message in ("uno", "dos", "tres"):
            handler.handle(record(message))
    finally:
        handler.close()
    today = date.today().isoformat()
    # Con maxBytes=1 cada registro rota el anterior; un archivo vacío nunca se rota.
    assert lines(tmp_path / f"app.log.{today}") == ["uno"]
    assert lines(tmp_path / f"app.log.{today}.1") == ["dos"]
    assert lines(tmp_path / "app.log") == ["tres"]
    assert len(list(tmp_path.iterdir())) == 3


def test_rotacion_diaria_al_arrancar_con_archivo_de_otro_dia(tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    old_day = date.today() - timedelta(days=3)
    path.write_text("de hace tres días\n", encoding="utf-8")
    noon = datetime.combine(old_day, datetime.min.time()).replace(hour=12).timestamp()
    os.utime(path, (noon, noon))
    # Ya existe un rotado de ese día (p. ej. de otra instancia): se usa `.1`, no se pisa.
    (tmp_path / f"error.log.{old_day.isoformat()}").write_text("anterior\n", encoding="utf-8")
    handler = DatedDailyHandler(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        handler.handle(record("de hoy"))
    finally:
        handler.close()
    assert lines(tmp_path / f"error.log.{old_day.isoformat()}") == ["anterior"]
    assert lines(tmp_path / f"error.log.{old_day.isoformat()}.1") == ["de hace tres días"]
    assert lines(path) == ["de hoy"]


def test_rotacion_diaria_a_medianoche_con_el_proceso_corriendo(tmp_path: Path) -> None:
    path = tmp_path / "health.log"
    handler = DatedDailyHandler(str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        handler.handle(record("ayer 1"))
        handler.handle(record("ayer 2"))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["health.log"]  # aún no es medianoche
        # Simula que lo escrito fue ayer y la medianoche ya pasó.
        yesterday = date.today() - timedelta(days=1)
        ts = datetime.combine(yesterday, datetime.min.time()).replace(hour=18).timestamp()
        os.utime(path, (ts, ts))
        handler.rolloverAt = handler.computeRollover(int(ts))
        assert handler.rolloverAt <= time.time()
        handler.handle(record("hoy"))
    finally:
        handler.close()
    assert lines(tmp_path / f"health.log.{yesterday.isoformat()}") == ["ayer 1", "ayer 2"]
    assert lines(path) == ["hoy"]
    assert handler.rolloverAt > time.time()  # la próxima, la medianoche que viene


def test_cada_registro_va_a_su_archivo(tmp_path: Path) -> None:
    setup_logging(tmp_path)
    logging.getLogger("inventario.prueba").info("informativo general")
    logging.getLogger("inventario.prueba").error("fallo grave")
    logging.getLogger("inventario.health").info("estado=OK base_datos=OK")
    logging.getLogger("inventario.sesiones").warning("LOGIN FALLIDO usuario=ana cliente=10.0.0.7")
    app, error = "\n".join(lines(tmp_path / "app.log")), "\n".join(lines(tmp_path / "error.log"))
    health, sesiones = "\n".join(lines(tmp_path / "health.log")), "\n".join(lines(tmp_path / "sesiones.log"))
    assert "informativo general" in app and "fallo grave" in app
    assert "fallo grave" in error and "informativo general" not in error
    assert "estado=OK" in health and "estado=OK" not in app and "estado=OK" not in error
    assert "LOGIN FALLIDO usuario=ana cliente=10.0.0.7" in sesiones and "LOGIN FALLIDO" not in app
    # ISO 8601 con desfase; sin zona indicada, UTC.
    assert re.match(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00 ERROR \[inventario\.prueba\] fallo grave", error
    )


def test_hora_iso_8601_en_zona_horaria_y_acceso_aparte(tmp_path: Path) -> None:
    setup_logging(tmp_path, zona="America/Mexico_City")
    antes = datetime.now(ZoneInfo("America/Mexico_City"))
    logging.getLogger("inventario.prueba").warning("backup a las 03:00")
    logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET /api/v1/productos HTTP/1.1" 200')
    (linea,) = lines(tmp_path / "app.log")
    hora = datetime.fromisoformat(linea.split(" ", 1)[0])
    # México no tiene horario de verano desde 2022: siempre -06:00.
    assert hora.utcoffset() == timedelta(hours=-6) and abs((hora - antes).total_seconds()) < 5
    assert linea.endswith("WARNING [inventario.prueba] backup a las 03:00")
    (acceso,) = lines(tmp_path / "acceso.log")
    assert '"GET /api/v1/productos HTTP/1.1" 200' in acceso and "-06:00 INFO" in acceso
    assert "GET /api" not in "\n".join(lines(tmp_path / "app.log"))


def test_nivel_de_log_configurable(tmp_path: Path) -> None:
    setup_logging(tmp_path, "WARNING")
    logging.getLogger("inventario.prueba").info("no debe salir")
    logging.getLogger("inventario.prueba").warning("sí debe salir")
    logging.getLogger("inventario.health").info("health siempre")
    assert [line.split("] ", 1)[1] for line in lines(tmp_path / "app.log")] == ["sí debe salir"]
    assert "health siempre" in "\n".join(lines(tmp_path / "health.log"))


SECRETS = [
    "hunter2",
    "clave con espacios",
    "s3cr3t0",
    "abc.def.ghi",
    "pg-secreta",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.firma_x",
    "clave-app-larga",
]


def test_ningun_secreto_llega_a_los_archivos(tmp_path: Path) -> None:
    setup_logging(tmp_path)
    log = logging.getLogger("inventario.prueba")
    log.info("conectando con password=hunter2 al servidor")
    log.info("cuerpo recibido: %s", {"nombre_usuario": "ana", "password": "clave con espacios"})
    log.info('json {"password": "s3cr3t0", "x": 1}')
    log.warning("cabecera Authorization: Bearer %s", "abc.def.ghi")
    log.error("no conecta a %s", "postgresql://u:pg-secreta@db.local:5432/inventario")
    log.info("token suelto %s", SECRETS[5])
    log.info("SECRET_KEY=clave-app-larga")
    logging.getLogger("inventario.sesiones").info("LOGIN OK usuario=ana password=hunter2")
    try:
        raise RuntimeError("falló con postgresql://u:pg-secreta@h/db y password=hunter2")
    except RuntimeError:
        log.exception("error inesperado")
    text = "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("*.log"))
    for secret in SECRETS:
        assert secret not in text, secret
    # Se redacta el valor, no el mensaje entero.
    assert "password=*** al servidor" in text and "postgresql://u:***@db.local:5432/inventario" in text
    assert "Bearer ***" in text and "'password': '***'" in text and '"password": "***"' in text
    assert "RuntimeError: falló con postgresql://u:***@h/db y password=***" in text
    assert "LOGIN OK usuario=ana password=***" in "".join(lines(tmp_path / "sesiones.log"))


def test_un_registro_mal_formado_no_rompe_al_llamador(tmp_path: Path) -> None:
    setup_logging(tmp_path)
    previous, logging.raiseExceptions = logging.raiseExceptions, False  # sin ruido en stderr
    try:
        logging.getLogger("inventario.prueba").info("valor %d", "no es número")
    finally:
        logging.raiseExceptions = previous
    logging.getLogger("inventario.prueba").info("después sigue funcionando")
    assert "después sigue funcionando" in "\n".join(lines(tmp_path / "app.log"))


def test_setup_logging_es_idempotente(tmp_path: Path) -> None:
    def ours(name: str) -> list[logging.Handler]:  # pytest cuelga también sus propios handlers
        return [h for h in logging.getLogger(name).handlers if h in logging_setup._configured]

    setup_logging(tmp_path)
    setup_logging(tmp_path)
    assert [type(h) for h in ours("")] == [DatedSizeRotatingHandler, DatedDailyHandler]
    assert len(ours("inventario.health")) == len(ours("inventario.sesiones")) == 1
    assert len(ours("uvicorn.access")) == 1
    assert len(logging_setup._configured) == 5
    logging.getLogger("inventario.prueba").error("una sola vez")
    logging.getLogger("inventario.health").info("health una vez")
    logging.getLogger("inventario.sesiones").info("sesión una vez")
    for name, text in (
        ("app.log", "una sola vez"),
        ("error.log", "una sola vez"),
        ("health.log", "health una vez"),
        ("sesiones.log", "sesión una vez"),
    ):
        assert sum(text in line for line in lines(tmp_path / name)) == 1, name
    # Otra carpeta: los registros siguientes van solo allí.
    other = tmp_path / "otra"
    setup_logging(other)
    logging.getLogger("inventario.prueba").error("en la otra")
    assert "en la otra" not in "\n".join(lines(tmp_path / "app.log"))
    assert sum("en la otra" in line for line in lines(other / "app.log")) == 1


def test_migraciones_en_espanol_sin_lo_informativo_en_ingles_de_las_bibliotecas(
    tmp_path: Path, pg_server: DatabaseServer
) -> None:
    """app.log de una instalación nueva: una línea en español por las migraciones, no las de Alembic
    ("Context impl PostgresqlImpl.", "Running upgrade ...") ni las de APScheduler."""
    setup_logging(tmp_path)
    target = new_database(pg_server, f"logs_migraciones_{os.getpid()}")
    try:
        engine = make_engine(target.url)
        try:
            migrations.upgrade(engine)
            migrations.upgrade(engine)  # ya al día: no dice nada
        finally:
            engine.dispose()
        logging.getLogger("apscheduler.scheduler").info("Adding job tentatively")
        logging.getLogger("apscheduler.scheduler").warning("aviso de apscheduler")
        app = "\n".join(lines(tmp_path / "app.log"))
        assert app.count("Migraciones aplicadas: base vacía → ") == 1, app
        assert "Context impl" not in app and "Running upgrade" not in app and "Adding job" not in app
        assert "aviso de apscheduler" in app
    finally:
        drop_database(pg_server, target.database)
