"""La API y las copias fuera del sitio: campos remoto_* en /listar y /{id}, sección fuera_del_sitio de
/estadisticas, POST /{id}/copiar-remoto y GET /{id}/manifiesto, contra un S3 real en loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyrage import x25519

from inventario.config import Settings
from inventario.main import create_app
from inventario.modules.remoto.service import wait_background
from inventario.postgres import DatabaseServer
from tests.conftest import ADMIN_PASSWORD, login
from tests.remoto_support import Destino, destino

API = "/api/v1/backup"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Destino]:
    with destino("s3", tmp_path / "remoto") as dest:
        yield dest


@pytest.fixture
def remote_client(settings: Settings, fresh_db: DatabaseServer, s3: Destino) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "BACKUP_REMOTO": s3.remote,
            "BACKUP_REMOTO_CONFIG": str(s3.config),
            "BACKUP_CIFRADO_DESTINATARIOS": str(x25519.Identity.generate().to_public()),
        }
    )
    with TestClient(create_app(configured, server=fresh_db, with_scheduler=False)) as client:
        yield client


def test_estado_fuera_del_sitio_en_la_api(remote_client: TestClient, s3: Destino) -> None:
    admin = login(remote_client, "admin", ADMIN_PASSWORD)
    r = remote_client.post(f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=admin)
    assert r.status_code == 201, r.text
    id_backup = r.json()["id_backup"]
    assert wait_background(120)
    texts = []

    r = remote_client.get(f"{API}/{id_backup}", headers=admin)
    assert r.status_code == 200
    body = r.json()
    texts.append(r.text)
    assert body["estado"] == "COMPLETADO" and body["remoto_estado"] == "COPIADO"
    assert body["remoto_objeto"] == body["nombre_archivo"] + ".age" and len(body["remoto_hash"]) == 32
    assert body["remoto_error"] is None and body["remoto_eliminado"] is False and body["remoto_fecha_copia"]

    r = remote_client.get(f"{API}/listar", headers=admin)
    texts.append(r.text)
    item = next(i for i in r.json()["items"] if i["id_backup"] == id_backup)
    assert item["remoto_estado"] == "COPIADO" and item["remoto_hash"] == body["remoto_hash"]

    r = remote_client.get(f"{API}/estadisticas", headers=admin)
    texts.append(r.text)
    offsite = r.json()["fuera_del_sitio"]
    assert offsite["configurado"] is True and offsite["destino"] == s3.remote and offsite["cifrado"] is True
    assert offsite["copiados"] == 1 and offsite["pendientes"] == 0 and offsite["errores"] == 0
    assert offsite["id_ultima_copia"] == id_backup and offsite["ultima_copia"]
    assert r.json()["total_backups"] == 1  # las claves del plan siguen ahí

    # Reintentar (volver a copiar) uno: ADMIN, responde al terminar.
    r = remote_client.post(f"{API}/{id_backup}/copiar-remoto", headers=admin)
    texts.append(r.text)
    assert r.status_code == 200, r.text
    assert r.json()["remoto_estado"] == "COPIADO" and r.json()["destino"] == s3.remote

    # El manifiesto, tal como está junto al archivo.
    r = remote_client.get(f"{API}/{id_backup}/manifiesto", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    manifest = json.loads(r.content)
    assert manifest["id_backup"] == id_backup and manifest["hash_md5"] == body["hash_md5"]
    assert body["nombre_archivo"] + ".manifest.json" in r.headers["content-disposition"]

    for text in texts:
        assert s3.secret not in text  # ninguna credencial en las respuestas

    # Errores: sin token 401, otro rol 403, inexistente 404.
    assert remote_client.post(f"{API}/{id_backup}/copiar-remoto").status_code == 401
    assert remote_client.get(f"{API}/{id_backup}/manifiesto").status_code == 401
    r = remote_client.post(
        "/api/v1/usuarios",
        json={"nombre_usuario": "operador1", "password": "operador-secreto", "rol": "OPERADOR"},
        headers=admin,
    )
    assert r.status_code == 201
    operador = login(remote_client, "operador1", "operador-secreto")
    assert remote_client.post(f"{API}/{id_backup}/copiar-remoto", headers=operador).status_code == 403
    assert remote_client.get(f"{API}/{id_backup}/manifiesto", headers=operador).status_code == 403
    assert remote_client.post(f"{API}/999/copiar-remoto", headers=admin).status_code == 404
    assert remote_client.get(f"{API}/999/manifiesto", headers=admin).status_code == 404


def test_copiar_remoto_con_el_servidor_caido_502_y_el_backup_sigue_bueno(
    remote_client: TestClient, s3: Destino
) -> None:
    admin = login(remote_client, "admin", ADMIN_PASSWORD)
    s3.stop()
    r = remote_client.post(f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=admin)
    assert r.status_code == 201
    id_backup = r.json()["id_backup"]
    assert wait_background(120)
    body = remote_client.get(f"{API}/{id_backup}", headers=admin).json()
    assert body["estado"] == "COMPLETADO" and body["remoto_estado"] == "ERROR" and body["remoto_error"]
    r = remote_client.post(f"{API}/{id_backup}/copiar-remoto", headers=admin)
    assert r.status_code == 502 and "rclone" in r.json()["detalle"]
    assert s3.secret not in r.text
    stats = remote_client.get(f"{API}/estadisticas", headers=admin).json()["fuera_del_sitio"]
    assert stats["errores"] == 1 and stats["copiados"] == 0
    s3.start()
    r = remote_client.post(f"{API}/{id_backup}/copiar-remoto", headers=admin)
    assert (
        r.status_code == 200 and r.json()["remoto_estado"] == "COPIADO" and r.json()["remoto_error"] is None
    )


def test_sin_remoto_configurado(client: TestClient, admin_headers: dict[str, str]) -> None:
    r = client.post(f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=admin_headers)
    id_backup = r.json()["id_backup"]
    assert r.json()["remoto_estado"] is None
    r = client.post(f"{API}/{id_backup}/copiar-remoto", headers=admin_headers)
    assert r.status_code == 409 and "BACKUP_REMOTO" in r.json()["detalle"]
    stats = client.get(f"{API}/estadisticas", headers=admin_headers).json()
    assert stats["fuera_del_sitio"]["configurado"] is False
    assert client.get(f"{API}/{id_backup}/manifiesto", headers=admin_headers).status_code == 200


def test_copiar_remoto_sin_archivo_local_410_y_sin_leerlo_503(
    remote_client: TestClient, settings: Settings
) -> None:
    """El catálogo dice COMPLETADO pero el archivo ya no está (o no se puede leer): error claro en
    español con su código, nunca 500; queda en ERROR en el backup."""
    admin = login(remote_client, "admin", ADMIN_PASSWORD)
    ids = []
    for _ in range(2):
        r = remote_client.post(f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=admin)
        assert r.status_code == 201, r.text
        ids.append((r.json()["id_backup"], r.json()["nombre_archivo"]))
    assert wait_background(120)
    directory = Path(settings.BACKUP_PATH)

    (id_gone, name_gone), (id_dir, name_dir) = ids
    for path in directory.glob(name_gone + "*"):
        path.unlink()
    r = remote_client.post(f"{API}/{id_gone}/copiar-remoto", headers=admin)
    assert r.status_code == 410, r.text
    assert (
        "ya no está en el directorio de backups" in r.json()["detalle"] and name_gone in r.json()["detalle"]
    )
    r = remote_client.get(f"{API}/{id_gone}", headers=admin)
    assert r.json()["remoto_estado"] == "ERROR" and r.json()["remoto_error"]

    # El archivo es ahora un directorio: no se puede leer (no es que falte).
    (directory / name_dir).unlink()
    (directory / name_dir).mkdir()
    r = remote_client.post(f"{API}/{id_dir}/copiar-remoto", headers=admin)
    assert r.status_code == 503, r.text
    assert f"No se pudo leer el backup {id_dir}" in r.json()["detalle"]
