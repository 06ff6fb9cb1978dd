"""`POST /api/v1/backup/{id}/enviar-email` contra un servidor SMTP real en loopback (aiosmtpd):
el adjunto llega idéntico byte a byte; 413, 422, 502, 503 y los estados del backup."""

from __future__ import annotations

import hashlib
import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from inventario.config import Settings
from inventario.postgres import DatabaseServer
from tests.backup_support import (
    API,
    backup,
    bloquear_pg_dump,
    cambiar,
    envejecer,
    esperar_fin,
    fallo_sembrado,
    fill,
)
from tests.servicio_support import puerto_libre
from tests.smtp_support import (  # fixtures de pytest
    CLAVE,
    USUARIO,
    Buzon,
    adjunto,
    autenticador,
    settings,
    smtp,
)

H = dict[str, str]


def enviar(
    client: TestClient, headers: H, id_backup: int, destino: object = "admin@empresa.com", **extra: object
) -> httpx.Response:
    return client.post(
        f"{API}/{id_backup}/enviar-email",
        json={"id_backup": id_backup, "email_destino": destino, **extra},
        headers=headers,
    )


# ------------------------------------------------------------------ envío


def test_el_adjunto_llega_identico_byte_a_byte(
    client: TestClient,
    admin_headers: H,
    fresh_db: DatabaseServer,
    settings: Settings,
    smtp: tuple[Buzon, int],
) -> None:
    buzon, port = smtp
    fill(fresh_db, 300)
    full = backup(client, admin_headers)
    archivo = (settings.backup_dir / full["nombre_archivo"]).read_bytes()
    # El cuerpo del plan, tal cual.
    r = enviar(client, admin_headers, full["id_backup"], "Admin@Empresa.com")
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["enviado"] is True and res["email_destino"] == "Admin@empresa.com"
    assert res["hash_md5"] == full["hash_md5"] and res["tamanio_bytes"] == len(archivo)
    assert res["servidor_smtp"] == f"127.0.0.1:{port}" and res["nombre_archivo"] == full["nombre_archivo"]
    ((remitente, destinatarios, _),) = buzon.recibidos
    assert remitente == "inventario@empresa.com" and destinatarios == ["Admin@empresa.com"]
    (msg,) = buzon.mensajes()
    assert msg["Subject"] == f"Backup COMPLETO {full['nombre_archivo']}"
    assert msg["To"] == "Admin@empresa.com" and "inventario@empresa.com" in msg["From"]
    assert msg["Message-ID"] and msg["Date"]
    nombre, tipo, contenido = adjunto(msg)
    assert nombre == full["nombre_archivo"] and tipo == "application/gzip"
    assert contenido == archivo and hashlib.md5(contenido).hexdigest() == full["hash_md5"]
    texto = msg.get_body(preferencelist=("plain",)).get_content()
    assert full["hash_md5"] in texto and "gunzip -c" in texto

    # Un diferencial (sin id_backup en el cuerpo: es opcional) dice cuál es su completo.
    cambiar(fresh_db)
    diff = backup(client, admin_headers, "/ejecutar-diferencial")
    r = client.post(
        f"{API}/{diff['id_backup']}/enviar-email",
        json={"email_destino": "ops@empresa.com"},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    msg = buzon.mensajes()[1]
    assert msg["Subject"] == f"Backup DIFERENCIAL {diff['nombre_archivo']}"
    assert full["nombre_archivo"] in msg.get_body(preferencelist=("plain",)).get_content()
    assert adjunto(msg)[2] == (settings.backup_dir / diff["nombre_archivo"]).read_bytes()


def test_direccion_internacional_con_smtputf8(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, smtp: tuple[Buzon, int]
) -> None:
    fill(fresh_db, 3)
    b = backup(client, admin_headers)
    r = enviar(client, admin_headers, b["id_backup"], "peña@empresa.com")
    assert r.status_code == 200, r.text
    assert smtp[0].recibidos[0][1] == ["peña@empresa.com"]


# ------------------------------------------------------------------ errores


def test_422_direcciones_y_cuerpos_invalidos_sin_inyeccion(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, smtp: tuple[Buzon, int]
) -> None:
    fill(fresh_db, 3)
    b = backup(client, admin_headers)
    i = b["id_backup"]
    malos = [
        "admin@empresa.com\r\nBcc: espia@otro.com",
        "admin@empresa.com\nSubject: hola",
        "admin@empresa.com\rX: y",
        "admin@empresa.com\x00",
        "sin-arroba",
        "a@b",
        "",
        "Admin <admin@empresa.com>",
        "admin@empresa.com, otro@empresa.com",
        "x" * 300 + "@empresa.com",
        123,
        ["admin@empresa.com"],
        None,
    ]
    for destino in malos:
        r = enviar(client, admin_headers, i, destino)
        assert r.status_code == 422, (destino, r.text)
        assert r.json()["detalle"].startswith("Datos inválidos: email_destino"), r.text
    assert "saltos de línea" in enviar(client, admin_headers, i, "a@b.com\r\nBcc: c@d.com").json()["detalle"]
    # El id del cuerpo debe ser el de la ruta; campos desconocidos y cuerpos vacíos: 422.
    r = client.post(
        f"{API}/{i}/enviar-email",
        json={"id_backup": i + 1, "email_destino": "a@empresa.com"},
        headers=admin_headers,
    )
    assert r.status_code == 422 and "no coincide" in r.json()["detalle"]
    for cuerpo in (
        {"email_destino": "a@empresa.com", "cc": "b@empresa.com"},
        {},
        {"id_backup": "1", "email_destino": "a@empresa.com"},
    ):
        r = client.post(f"{API}/{i}/enviar-email", json=cuerpo, headers=admin_headers)
        assert r.status_code == 422, (cuerpo, r.text)
    assert client.post(f"{API}/{i}/enviar-email", headers=admin_headers).status_code == 422
    assert smtp[0].recibidos == []


def test_404_410_409_segun_el_backup(
    client: TestClient,
    admin_headers: H,
    fresh_db: DatabaseServer,
    settings: Settings,
    smtp: tuple[Buzon, int],
) -> None:
    fill(fresh_db, 3)
    assert enviar(client, admin_headers, 999).status_code == 404
    viejo = backup(client, admin_headers)
    nuevo = backup(client, admin_headers)
    # Eliminado por la retención: 410.
    envejecer(fresh_db, {viejo["id_backup"]: 200})
    assert client.post(f"{API}/limpiar", headers=admin_headers).json()["ids_eliminados"] == [
        viejo["id_backup"]
    ]
    r = enviar(client, admin_headers, viejo["id_backup"])
    assert r.status_code == 410 and "eliminado" in r.json()["detalle"]
    # En ERROR: 409.
    with fallo_sembrado(settings):
        err = client.post(
            f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=admin_headers
        ).json()
    r = enviar(client, admin_headers, err["id_backup"])
    assert r.status_code == 409 and "terminó con error" in r.json()["detalle"]
    # Dañado: 409 sin enviar nada.
    path = settings.backup_dir / nuevo["nombre_archivo"]
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    r = enviar(client, admin_headers, nuevo["id_backup"])
    assert r.status_code == 409 and "MD5 no coincide" in r.json()["detalle"]
    # Desaparecido del disco: 410.
    path.unlink()
    r = enviar(client, admin_headers, nuevo["id_backup"])
    assert r.status_code == 410 and "ya no está" in r.json()["detalle"]
    # En proceso: 409.
    bloqueo = bloquear_pg_dump(fresh_db)
    try:
        r = client.post(f"{API}/ejecutar-completo", headers=admin_headers)
        assert r.status_code == 202
        en_curso = r.json()["id_backup"]
        r = enviar(client, admin_headers, en_curso)
        assert r.status_code == 409 and "en proceso" in r.json()["detalle"]
    finally:
        bloqueo.rollback()
        bloqueo.close()

    assert esperar_fin(client, admin_headers, en_curso)["estado"] == "COMPLETADO"
    assert smtp[0].recibidos == []


def test_413_adjunto_sobre_el_limite_sugiere_la_descarga(
    client: TestClient,
    admin_headers: H,
    fresh_db: DatabaseServer,
    settings: Settings,
    smtp: tuple[Buzon, int],
) -> None:
    fill(fresh_db, 50)
    b = backup(client, admin_headers)
    assert b["tamanio_bytes"] > 1024
    settings.EMAIL_ADJUNTO_MAX_MB = 1 / 1024  # 1 KB
    r = enviar(client, admin_headers, b["id_backup"])
    assert r.status_code == 413, r.text
    detalle = r.json()["detalle"]
    assert "EMAIL_ADJUNTO_MAX_MB" in detalle and f"GET {API}/{b['id_backup']}/descargar" in detalle
    assert smtp[0].recibidos == []
    settings.EMAIL_ADJUNTO_MAX_MB = 20
    assert enviar(client, admin_headers, b["id_backup"]).status_code == 200


def test_503_sin_configurar(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 3)
    b = backup(client, admin_headers)
    settings.SMTP_HOST = None
    r = enviar(client, admin_headers, b["id_backup"])
    assert (
        r.status_code == 503
        and "no está configurado" in r.json()["detalle"]
        and "SMTP_HOST" in r.json()["detalle"]
    )
    settings.SMTP_HOST, settings.SMTP_REMITENTE = "127.0.0.1", None
    r = enviar(client, admin_headers, b["id_backup"])
    assert r.status_code == 503 and "SMTP_REMITENTE" in r.json()["detalle"]


def test_502_servidor_inalcanzable_o_que_no_habla_tls(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 3)
    b = backup(client, admin_headers)
    port = settings.SMTP_PORT
    settings.SMTP_PORT = puerto_libre()  # nadie escucha
    r = enviar(client, admin_headers, b["id_backup"])
    assert r.status_code == 502, r.text
    assert "rechazó la conexión" in r.json()["detalle"] and str(settings.SMTP_PORT) in r.json()["detalle"]
    settings.SMTP_PORT = port
    settings.SMTP_TLS = "starttls"  # aiosmtpd sin certificado no ofrece STARTTLS
    r = enviar(client, admin_headers, b["id_backup"])
    assert r.status_code == 502 and "STARTTLS" in r.json()["detalle"].upper()
    settings.SMTP_TLS = "ssl"  # TLS implícito contra un servidor en claro
    r = enviar(client, admin_headers, b["id_backup"])
    assert r.status_code == 502 and "TLS" in r.json()["detalle"]
    settings.SMTP_HOST, settings.SMTP_TLS = "no-existe.invalid", "none"
    r = enviar(client, admin_headers, b["id_backup"])
    assert r.status_code == 502 and "no-existe.invalid" in r.json()["detalle"]


@pytest.fixture
def certificado(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("sin openssl para generar un certificado de prueba")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_y_autenticacion_sin_filtrar_la_clave(
    client: TestClient,
    admin_headers: H,
    fresh_db: DatabaseServer,
    settings: Settings,
    certificado: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from pydantic import SecretStr

    fill(fresh_db, 3)
    b = backup(client, admin_headers)
    cert, key = certificado
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    buzon, port = Buzon(), puerto_libre()
    controller = Controller(
        buzon,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        authenticator=autenticador,
        auth_required=True,
    )
    controller.start()
    caplog.set_level(logging.DEBUG)
    try:
        settings.SMTP_PORT, settings.SMTP_TLS = port, "starttls"
        settings.SMTP_USUARIO, settings.SMTP_PASSWORD = USUARIO, SecretStr(CLAVE)
        # Certificado que el sistema no conoce: 502 (no se envía nada en claro).
        r = enviar(client, admin_headers, b["id_backup"])
        assert r.status_code == 502 and "TLS" in r.json()["detalle"], r.text
        # Confiando en él (SSL_CERT_FILE, como haría un administrador con su CA): STARTTLS + AUTH.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        r = enviar(client, admin_headers, b["id_backup"])
        assert r.status_code == 200, r.text
        assert adjunto(buzon.mensajes()[0])[2] == (settings.backup_dir / b["nombre_archivo"]).read_bytes()
        # Clave equivocada: 502 claro.
        settings.SMTP_PASSWORD = SecretStr("otra-clave-incorrecta")
        r = enviar(client, admin_headers, b["id_backup"])
        assert r.status_code == 502 and "usuario o la contraseña" in r.json()["detalle"], r.text
        assert len(buzon.recibidos) == 1
    finally:
        controller.stop()
    assert CLAVE not in caplog.text and "otra-clave-incorrecta" not in caplog.text
    assert CLAVE not in repr(settings) and CLAVE not in settings.model_dump_json()
