"""Página Backups de la consola (cliente en proceso): estado en vivo, correo por un SMTP real en
loopback (aiosmtpd), verificar, manifiesto y la orden de restauración; los mismos errores que la API."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient

from inventario.config import Settings
from inventario.postgres import DatabaseServer
from tests.backup_support import backup, bloquear_pg_dump, esperar_fin, fill
from tests.consola_support import aviso, csrf_de, entrar
from tests.smtp_support import Buzon, adjunto, settings, smtp  # fixtures de pytest

H = dict[str, str]


def test_backup_en_vivo_y_en_curso(client: TestClient, admin_headers: H, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    entrar(client)
    csrf = csrf_de(client, "/consola/backups")
    bloqueo = bloquear_pg_dump(fresh_db)
    try:
        r = client.post("/consola/backups/ejecutar", data={"csrf": csrf, "tipo": "COMPLETO"})
        m = re.search(r"/consola/backups/(\d+)$", str(r.url))
        assert m is not None, r.url
        id_backup = int(m.group(1))
        assert aviso(r.text) == f"Backup COMPLETO n.º {id_backup} en marcha"
        # Mientras está EN_PROCESO la página se recarga sola.
        assert '<meta http-equiv="refresh" content="2">' in r.text and 'id="estado">EN_PROCESO<' in r.text
        r = client.post("/consola/backups/ejecutar", data={"csrf": csrf, "tipo": "DIFERENCIAL"})
        assert str(r.url).endswith("/consola/backups") and "Backup en curso" in aviso(r.text)
        r = client.get(f"/consola/backups/{id_backup}/descargar")
        assert r.status_code == 409 and "aún está en proceso" in r.text
    finally:
        bloqueo.rollback()
        bloqueo.close()
    assert esperar_fin(client, admin_headers, id_backup)["ejecutado_por"] == "admin"
    r = client.get(f"/consola/backups/{id_backup}")
    assert 'http-equiv="refresh"' not in r.text and 'id="estado">COMPLETADO<' in r.text
    assert f'<pre id="comando">.venv/bin/inventario backup restaurar {id_backup}</pre>' in r.text
    assert "<h2>Manifiesto</h2>" in r.text and "productos" in r.text


def test_correo_verificar_y_archivo_danado(
    client: TestClient,
    admin_headers: H,
    fresh_db: DatabaseServer,
    settings: Settings,
    smtp: tuple[Buzon, int],
) -> None:
    fill(fresh_db)
    hecho = backup(client, admin_headers)
    id_backup = hecho["id_backup"]
    entrar(client)
    csrf = csrf_de(client, f"/consola/backups/{id_backup}")
    r = client.post(
        f"/consola/backups/{id_backup}/email", data={"csrf": csrf, "email_destino": "no es correo"}
    )
    assert "no es válida" in aviso(r.text) and smtp[0].recibidos == []
    r = client.post(
        f"/consola/backups/{id_backup}/email", data={"csrf": csrf, "email_destino": "dueno@tienda.com"}
    )
    assert aviso(r.text) == f"Backup enviado a dueno@tienda.com (MD5 {hecho['hash_md5']})"
    (msg,) = smtp[0].mensajes()
    nombre, _, contenido = adjunto(msg)
    assert nombre == hecho["nombre_archivo"] and hashlib.md5(contenido).hexdigest() == hecho["hash_md5"]

    r = client.post(f"/consola/backups/{id_backup}/verificar", data={"csrf": csrf})
    assert aviso(r.text).startswith(f"Verificado: {hecho['nombre_archivo']} (MD5 {hecho['hash_md5']}")
    archivo = Path(settings.BACKUP_PATH) / hecho["nombre_archivo"]
    datos = bytearray(archivo.read_bytes())
    datos[len(datos) // 2] ^= 0xFF
    archivo.write_bytes(bytes(datos))
    r = client.post(f"/consola/backups/{id_backup}/verificar", data={"csrf": csrf})
    assert aviso(r.text).startswith("La verificación falló")
    r = client.get(f"/consola/backups/{id_backup}/descargar")
    assert r.status_code == 409 and "MD5 no coincide" in r.text and "text/html" in r.headers["content-type"]
    r = client.post(
        f"/consola/backups/{id_backup}/email", data={"csrf": csrf, "email_destino": "dueno@tienda.com"}
    )
    assert "MD5 no coincide" in aviso(r.text) and len(smtp[0].recibidos) == 1
    archivo.unlink()
    r = client.get(f"/consola/backups/{id_backup}/descargar")
    assert r.status_code == 410 and "ya no está" in r.text


def test_filtros_del_listado(client: TestClient, admin_headers: H, fresh_db: DatabaseServer) -> None:
    fill(fresh_db)
    completo = backup(client, admin_headers)
    diferencial = backup(client, admin_headers, "/ejecutar-diferencial")
    entrar(client)

    def ids(query: str) -> set[int]:
        r = client.get(f"/consola/backups?{query}")
        assert r.status_code == 200, r.text
        return {int(i) for i in re.findall(r'<a href="/consola/backups/(\d+)">', r.text)}

    assert ids("") == {completo["id_backup"], diferencial["id_backup"]}
    assert ids("tipo=DIFERENCIAL") == {diferencial["id_backup"]}
    assert ids("estado=ERROR") == set()
    assert ids("hasta=2000-01-01") == set()
    assert ids("desde=2000-01-01&tipo=COMPLETO") == {completo["id_backup"]}
