"""`backup verificar` coteja archivo, manifiesto y catálogo entre sí: un archivo reemplazado con su
manifiesto editado para que cuadre no pasa, y `--todos` informa de cada backup COMPLETADO del
catálogo cuyo archivo ya no está (con o sin su manifiesto)."""

from __future__ import annotations

import hashlib
import json

from fastapi.testclient import TestClient

from inventario.modules.backup.repo import MANIFEST_SUFFIX
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import fill_inventario as fill
from tests.conftest import run_cli


def test_archivo_reemplazado_con_manifiesto_editado_no_pasa(
    runtime: Runtime,
    fresh_db: DatabaseServer,
    cli_env: dict[str, str],
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    first = service.run("COMPLETO", "MANUAL")
    fill(fresh_db, 5, texto="otra")
    second = service.run("COMPLETO", "MANUAL")
    directory = runtime.settings.backup_dir
    # El atacante: copia el contenido de otro backup válido y edita el manifiesto para que cuadre.
    target = directory / first.nombre_archivo
    data = (directory / second.nombre_archivo).read_bytes()
    target.write_bytes(data)
    mpath = directory / (first.nombre_archivo + MANIFEST_SUFFIX)
    manifest = json.loads(mpath.read_text())
    other = json.loads((directory / (second.nombre_archivo + MANIFEST_SUFFIX)).read_text())
    manifest.update(
        hash_md5=hashlib.md5(data).hexdigest(),
        tamanio_bytes=len(data),
        tamanio_sin_comprimir=other["tamanio_sin_comprimir"],
    )
    mpath.write_text(json.dumps(manifest))
    out = run_cli(cli_env, "backup", "verificar", str(first.id_backup))
    assert out.returncode == 1, out.stdout
    assert "no es el archivo que registró el catálogo" in out.stdout
    # Lo mismo que ya decía la descarga.
    assert client.get(f"/api/v1/backup/{first.id_backup}/descargar", headers=admin_headers).status_code == 409
    out = run_cli(cli_env, "backup", "verificar", str(second.id_backup))
    assert out.returncode == 0 and "OK" in out.stdout


def test_verificar_todos_informa_cada_completado_sin_archivo(
    runtime: Runtime, fresh_db: DatabaseServer, cli_env: dict[str, str]
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    sin_nada, sin_archivo, sano = (service.run("COMPLETO", "MANUAL") for _ in range(3))
    directory = runtime.settings.backup_dir
    (directory / sin_nada.nombre_archivo).unlink()
    (directory / (sin_nada.nombre_archivo + MANIFEST_SUFFIX)).unlink()
    (directory / sin_archivo.nombre_archivo).unlink()
    out = run_cli(cli_env, "backup", "verificar", "--todos")
    assert out.returncode == 1
    lines = {
        line.split()[1].rstrip(":"): line
        for line in out.stdout.splitlines()
        if line.startswith(("OK", "ERROR"))
    }
    assert lines[str(sin_nada.id_backup)].startswith("ERROR")
    assert "ni su archivo ni su manifiesto" in lines[str(sin_nada.id_backup)]
    assert "el catálogo lo tiene como COMPLETADO" in lines[str(sin_nada.id_backup)]
    error = lines[str(sin_archivo.id_backup)]
    assert error.startswith("ERROR") and "su manifiesto está, el archivo no" in error
    assert "ni su manifiesto" not in error
    assert lines[str(sano.id_backup)].startswith("OK")


def test_detalle_no_da_por_disponible_un_archivo_danado_del_mismo_tamano(
    runtime: Runtime, fresh_db: DatabaseServer, client: TestClient, admin_headers: dict[str, str]
) -> None:
    fill(fresh_db)
    row = BackupService(runtime).run("COMPLETO", "MANUAL")
    url = f"/api/v1/backup/{row.id_backup}"
    assert client.get(url, headers=admin_headers).json()["archivo_disponible"] is True
    path = runtime.settings.backup_dir / row.nombre_archivo
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # mismo tamaño, un byte cambiado
    path.write_bytes(bytes(data))
    assert client.get(url, headers=admin_headers).json()["archivo_disponible"] is False
    assert client.get(url + "/descargar", headers=admin_headers).status_code == 409
