"""API de backups (`/api/v1/backup`) contra PostgreSQL y pg_dump reales: los nueve endpoints del
plan, sus códigos de estado y las notificaciones que deja cada backup."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from inventario.archivos import human_size
from inventario.config import Settings
from inventario.modules.backup.repo import MANIFEST_SUFFIX
from inventario.postgres import DatabaseServer
from tests.backup_support import (
    API,
    H,
    backup,
    bloquear_pg_dump,
    cambiar,
    connect,
    diferencial_fallido,
    envejecer,
    esperar_fin,
    fallo_sembrado,
    fill,
    notificaciones,
)
from tests.conftest import ADMIN_PASSWORD, aplicacion, login

# ------------------------------------------------------------------ utilidades


ENDPOINTS = [
    ("GET", "/estadisticas"),
    ("GET", "/listar"),
    ("GET", "/1"),
    ("POST", "/ejecutar"),
    ("POST", "/ejecutar-completo"),
    ("POST", "/ejecutar-diferencial"),
    ("GET", "/1/descargar"),
    ("POST", "/1/enviar-email"),
    ("POST", "/limpiar"),
    ("GET", "/puntos-restauracion"),
]


# ------------------------------------------------------------------ permisos


def test_los_nueve_endpoints_exigen_token_y_rol_admin(
    client: TestClient, operador_headers: H, settings: Settings
) -> None:
    cuerpo = {"id_backup": 1, "email_destino": "admin@empresa.com"}
    for method, path in ENDPOINTS:
        r = client.request(method, f"{API}{path}", json=cuerpo)
        assert r.status_code == 401, (method, path, r.text)
        assert "token" in r.json()["detalle"]
        r = client.request(method, f"{API}{path}", json=cuerpo, headers=operador_headers)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["detalle"] == "Se requiere el rol ADMIN"
    # Nada se ejecutó: ni archivos ni registros.
    assert not settings.backup_dir.exists() or list(settings.backup_dir.iterdir()) == []


def test_openapi_tiene_las_nueve_rutas_del_plan(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    esperadas = {
        ("get", "/estadisticas"),
        ("get", "/listar"),
        ("get", "/{id_backup}"),
        ("post", "/ejecutar"),
        ("post", "/ejecutar-completo"),
        ("post", "/ejecutar-diferencial"),
        ("get", "/{id_backup}/descargar"),
        ("post", "/{id_backup}/enviar-email"),
        ("post", "/limpiar"),
        ("get", "/puntos-restauracion"),  # añadida (issue 13)
        # Añadidas (issue 12): copias fuera del sitio.
        ("post", "/{id_backup}/copiar-remoto"),
        ("get", "/{id_backup}/manifiesto"),
    }
    presentes = {(m, p.removeprefix(API)) for p, ops in paths.items() if p.startswith(API) for m in ops}
    assert presentes == esperadas


# ------------------------------------------------------------------ ejecutar


def test_ejecutar_completo_202_en_proceso_y_el_cliente_consulta(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db)
    bloqueo = bloquear_pg_dump(fresh_db)
    try:
        # El curl del plan, con token: `?usuario=` se acepta pero firma el usuario del token.
        r = client.post(f"{API}/ejecutar-completo?usuario=otro", headers=admin_headers)
        assert r.status_code == 202, r.text
        b = r.json()
        assert b["estado"] == "EN_PROCESO" and b["tipo"] == "COMPLETO" and b["ejecutado_por"] == "admin"
        assert r.headers["location"] == f"{API}/{b['id_backup']}"
        assert b["archivo_disponible"] is False and b["hash_md5"] is None
        # Mientras tanto: 409 para otro backup (con y sin esperar) y para la limpieza.
        for ruta, params in [
            ("/ejecutar-completo", {}),
            ("/ejecutar", {"esperar": "true"}),
            ("/ejecutar-diferencial", {}),
            ("/limpiar", {}),
        ]:
            r2 = client.post(f"{API}{ruta}", params=params, headers=admin_headers)
            assert r2.status_code == 409, (ruta, r2.text)
            assert r2.json()["detalle"].startswith("Backup en curso")
        r3 = client.get(f"{API}/{b['id_backup']}/descargar", headers=admin_headers)
        assert r3.status_code == 409 and "en proceso" in r3.json()["detalle"]
        est = client.get(f"{API}/estadisticas", headers=admin_headers).json()
        assert est["backup_en_curso"] == b["id_backup"] and est["ultimo_backup_estado"] == "EN_PROCESO"
    finally:
        bloqueo.rollback()
        bloqueo.close()
    final = esperar_fin(client, admin_headers, b["id_backup"])
    assert final["estado"] == "COMPLETADO" and final["archivo_disponible"] is True
    path = settings.backup_dir / final["nombre_archivo"]
    assert path.stat().st_size == final["tamanio_bytes"]
    assert hashlib.md5(path.read_bytes()).hexdigest() == final["hash_md5"]
    # Solo uno: los rechazados con 409 no dejaron registros.
    assert client.get(f"{API}/listar", headers=admin_headers).json()["total"] == 1
    (n,) = notificaciones(client, admin_headers)
    assert n["titulo"] == "✅ Backup COMPLETO completado" and n["semaforo"] == "VERDE"
    assert final["tamanio_legible"] in n["mensaje"] and " s," in n["mensaje"]
    assert n["referencia_tipo"] == "BACKUP" and n["referencia_id"] == final["id_backup"]


def test_esperar_201_diferencial_con_su_base_y_tipos(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer
) -> None:
    fill(fresh_db)
    full = backup(client, admin_headers, usuario="cualquiera")
    assert full["tipo"] == "COMPLETO" and full["ejecutado_por"] == "admin" and full["base"] is None
    cambiar(fresh_db)
    r = client.post(f"{API}/ejecutar-diferencial", params={"esperar": "true"}, headers=admin_headers)
    assert r.status_code == 201 and r.headers["location"] == f"{API}/{r.json()['id_backup']}"
    diff = r.json()
    assert diff["tipo"] == "DIFERENCIAL" and diff["id_backup_base"] == full["id_backup"]
    assert diff["base"]["id_backup"] == full["id_backup"] and diff["base"]["hash_md5"] == full["hash_md5"]
    assert diff["nombre_archivo"].endswith("_DIFF.sql.gz") and diff["archivo_disponible"]
    # El completo conoce a sus diferenciales.
    r = client.get(f"{API}/{full['id_backup']}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["diferenciales"] == [diff["id_backup"]]
    # /ejecutar: tipo en el cuerpo o en la query (sin distinguir mayúsculas).
    r = client.post(
        f"{API}/ejecutar", params={"esperar": "true"}, json={"tipo": "completo"}, headers=admin_headers
    )
    assert r.status_code == 201 and r.json()["tipo"] == "COMPLETO"
    r = client.post(
        f"{API}/ejecutar", params={"esperar": "true", "tipo": "DIFERENCIAL"}, headers=admin_headers
    )
    assert r.status_code == 201 and r.json()["tipo"] == "DIFERENCIAL"
    assert r.json()["id_backup_base"] == r.json()["base"]["id_backup"]
    # AUTO (el valor por defecto): COMPLETO o DIFERENCIAL según el día, como el job.
    r = client.post(f"{API}/ejecutar", params={"esperar": "true"}, headers=admin_headers)
    assert r.status_code == 201 and r.json()["tipo"] in ("COMPLETO", "DIFERENCIAL")
    titulos = [n["titulo"] for n in notificaciones(client, admin_headers)]
    assert titulos.count("✅ Backup DIFERENCIAL completado") >= 2
    assert titulos.count("✅ Backup COMPLETO completado") >= 2


def test_ejecutar_422_en_espanol(client: TestClient, admin_headers: H) -> None:
    casos = [
        ({"tipo": "SEMANAL"}, None),
        (None, {"tipo": "SEMANAL"}),
        ({"tipo": 3}, None),
        ({"tipo": "COMPLETO", "otro": 1}, None),
        ({"tipo": "COMPLETO"}, {"tipo": "DIFERENCIAL"}),  # cuerpo y query no coinciden
        ([1, 2], None),
    ]
    for cuerpo, params in casos:
        r = client.post(f"{API}/ejecutar", json=cuerpo, params=params, headers=admin_headers)
        assert r.status_code == 422, (cuerpo, params, r.text)
        assert r.json()["detalle"].startswith("Datos inválidos"), r.text
    r = client.post(
        f"{API}/ejecutar",
        content=b"{no es json",
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "JSON" in r.json()["detalle"]
    r = client.post(f"{API}/ejecutar-completo", params={"esperar": "quizas"}, headers=admin_headers)
    assert r.status_code == 422 and "verdadero o falso" in r.json()["detalle"]
    assert client.get(f"{API}/listar", headers=admin_headers).json()["total"] == 0


def test_diferencial_sin_completo_se_promueve_y_lo_avisa(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 5)
    b = backup(client, admin_headers, "/ejecutar-diferencial")
    assert b["tipo"] == "COMPLETO" and "se hizo COMPLETO" in b["nota"]
    # Instalación nueva (nunca hubo un COMPLETO): lo esperado, informativo y VERDE, no un aviso.
    avisos = notificaciones(client, admin_headers)
    assert [(n["titulo"], n["semaforo"]) for n in reversed(avisos)] == [
        ("ℹ️ Primer backup: el diferencial se hace COMPLETO", "VERDE"),
        ("✅ Backup COMPLETO completado", "VERDE"),
    ]
    assert "No hay un backup completo utilizable" in avisos[-1]["mensaje"]
    assert "primer backup" in avisos[-1]["mensaje"]

    # Ya hubo un completo y su archivo falta: eso sí rompe la cadena y es AMARILLO.
    (settings.backup_dir / b["nombre_archivo"]).unlink()
    b2 = backup(client, admin_headers, "/ejecutar-diferencial")
    assert b2["tipo"] == "COMPLETO" and "no está disponible" in b2["nota"]
    todos = notificaciones(client, admin_headers)
    nuevos = todos[: len(todos) - len(avisos)]
    promovido = {n["titulo"]: n for n in nuevos}["⚠️ Backup DIFERENCIAL promovido a COMPLETO"]
    assert promovido["semaforo"] == "AMARILLO" and "se hizo COMPLETO" in promovido["mensaje"]
    assert "primer backup" not in promovido["mensaje"]


def test_backup_fallido_503_con_registro_error_y_notificacion_roja(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 5)
    with fallo_sembrado(settings):
        r = client.post(f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=admin_headers)
        assert r.status_code == 503, r.text
        fallido = r.json()
        assert fallido["estado"] == "ERROR" and "FileExistsError" in fallido["mensaje_error"]
        assert fallido["detalle"].startswith("Error en backup COMPLETO")
        assert r.headers["location"] == f"{API}/{fallido['id_backup']}"
        # Por el camino del 202 el fallo se ve al consultar.
        r = client.post(f"{API}/ejecutar-completo", headers=admin_headers)
        assert r.status_code == 202, r.text
        assert esperar_fin(client, admin_headers, r.json()["id_backup"])["estado"] == "ERROR"
    rojas = [n for n in notificaciones(client, admin_headers) if n["semaforo"] == "ROJO"]
    assert len(rojas) == 2 and {n["titulo"] for n in rojas} == {"❌ Error en Backup COMPLETO"}
    assert "FileExistsError" in rojas[0]["mensaje"]
    # Un backup en ERROR no tiene archivo que descargar.
    r = client.get(f"{API}/{fallido['id_backup']}/descargar", headers=admin_headers)
    assert r.status_code == 409 and "terminó con error" in r.json()["detalle"]
    # Y el siguiente funciona.
    assert backup(client, admin_headers)["estado"] == "COMPLETADO"


def test_directorio_de_backups_inutilizable_503_sin_500(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings, tmp_path: Path
) -> None:
    fill(fresh_db, 3)
    full = backup(client, admin_headers)
    archivo = tmp_path / "soy-un-archivo"
    archivo.write_text("x")
    settings.BACKUP_PATH = str(archivo / "backups")  # mkdir fallará: el padre es un archivo
    fallidos = []
    # El fallo llega antes de crear el registro EN_PROCESO: también deja fila ERROR y aviso ROJO,
    # por el camino de esperar y por el del 202.
    for ruta, tipo in (
        ("/ejecutar-completo?esperar=true", "COMPLETO"),
        ("/ejecutar-diferencial", "DIFERENCIAL"),
    ):
        r = client.post(f"{API}{ruta}", headers=admin_headers)
        assert r.status_code == 503, (ruta, r.text)
        cuerpo = r.json()
        assert cuerpo["estado"] == "ERROR" and cuerpo["tipo"] == tipo
        assert (
            cuerpo["detalle"].startswith(f"Error en backup {tipo}")
            and "NotADirectoryError" in cuerpo["mensaje_error"]
        )
        assert cuerpo["archivo_disponible"] is False
        fallidos.append(cuerpo["id_backup"])
    r = client.post(f"{API}/limpiar", headers=admin_headers)
    assert r.status_code == 503 and "backup" in r.json()["detalle"].lower()
    rojas = [n for n in notificaciones(client, admin_headers) if n["semaforo"] == "ROJO"]
    assert {n["titulo"] for n in rojas} == {"❌ Error en Backup COMPLETO", "❌ Error en Backup DIFERENCIAL"}
    r = client.get(f"{API}/{full['id_backup']}/descargar", headers=admin_headers)
    # 503 (no 410): el archivo no se da por perdido mientras el directorio no esté accesible.
    assert r.status_code == 503 and "No se pudo leer el archivo" in r.json()["detalle"]
    r = client.get(f"{API}/{full['id_backup']}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["archivo_disponible"] is False
    r = client.get(f"{API}/estadisticas", headers=admin_headers)
    assert r.status_code == 200 and r.json()["espacio_libre_bytes"] is None
    assert r.json()["ultimo_error"]["id_backup"] == fallidos[-1]
    assert r.json()["total_backups"] == 1  # los fallidos no cuentan como backups
    # Con el directorio de nuevo utilizable, el siguiente funciona.
    settings.BACKUP_PATH = str(tmp_path / "otro")
    assert backup(client, admin_headers)["estado"] == "COMPLETADO"


def test_arranca_con_backup_path_inutilizable_y_las_consultas_no_crean_directorios(
    settings: Settings, fresh_db: DatabaseServer, tmp_path: Path
) -> None:
    from inventario.main import create_app

    archivo = tmp_path / "soy-un-archivo"
    archivo.write_text("x")
    roto = settings.model_copy(update={"BACKUP_PATH": str(archivo / "backups")})
    with TestClient(create_app(roto, server=fresh_db, with_scheduler=False)) as client:
        headers = login(client, "admin", ADMIN_PASSWORD)
        salud = client.get("/health").json()
        assert salud["base_datos"]["estado"] == "OK" and salud["estado"] == "DEGRADADO"
        assert "no es utilizable" in salud["disco_backups"]["mensaje"]
        assert client.get(f"{API}/listar", headers=headers).status_code == 200
    assert "revisar el directorio de backups" in (Path(settings.LOGS_PATH) / "error.log").read_text()

    ausente = settings.model_copy(update={"BACKUP_PATH": str(tmp_path / "aun-no-existe")})
    with TestClient(create_app(ausente, server=fresh_db, with_scheduler=False)) as client:
        headers = login(client, "admin", ADMIN_PASSWORD)
        (tmp_path / "aun-no-existe").rmdir()  # lo creó el arranque; las consultas no deben recrearlo
        for ruta in ("/listar", "/estadisticas", "/99", "/99/descargar"):
            assert client.get(f"{API}{ruta}", headers=headers).status_code in (200, 404)
        assert not (tmp_path / "aun-no-existe").exists()
        backup(client, headers)
        assert (tmp_path / "aun-no-existe").is_dir()


def test_al_cerrar_el_servicio_espera_al_backup_en_segundo_plano(
    settings: Settings, fresh_db: DatabaseServer
) -> None:
    from inventario.main import create_app

    bloqueo = bloquear_pg_dump(fresh_db)  # el backup queda EN_PROCESO hasta soltarlo
    soltar = threading.Timer(1.5, bloqueo.rollback)
    try:
        with TestClient(create_app(settings, server=fresh_db, with_scheduler=False)) as client:
            headers = login(client, "admin", ADMIN_PASSWORD)
            fill(fresh_db, 50)
            r = client.post(f"{API}/ejecutar-completo", headers=headers)
            assert r.status_code == 202 and r.json()["estado"] == "EN_PROCESO"
            id_backup = r.json()["id_backup"]
            soltar.start()
            cerrando = time.monotonic()
        esperado = time.monotonic() - cerrando
    finally:
        soltar.cancel()
        bloqueo.close()
    # El cierre esperó al hilo: archivo publicado y registro COMPLETADO, no EN_PROCESO ni ERROR.
    assert esperado >= 1.0
    with connect(fresh_db) as conn:
        estado, nombre = conn.execute(
            "SELECT estado, nombre_archivo FROM historial_backup WHERE id_backup = %s", (id_backup,)
        ).fetchone()  # type: ignore[misc]  # la fila existe: el backup se acaba de registrar
    assert estado == "COMPLETADO"
    assert (settings.backup_dir / nombre).is_file()


def test_disco_lleno_507_con_registro_error(
    settings: Settings, fresh_db: DatabaseServer, disco_pequeno: Path
) -> None:
    from inventario.main import create_app

    pequeno = settings.model_copy(update={"BACKUP_PATH": str(disco_pequeno)})
    with TestClient(create_app(pequeno, server=fresh_db, with_scheduler=False)) as client:
        headers = login(client, "admin", ADMIN_PASSWORD)
        # Datos poco comprimibles, bastante más grandes que el disco.
        fill(fresh_db, 3000, texto="")
        with connect(fresh_db) as conn:
            conn.execute(
                "UPDATE productos SET descripcion = (SELECT string_agg(md5(random()::text || g), '') "
                "FROM generate_series(1, 8) g WHERE productos.id_producto > 0)"
            )
        r = client.post(f"{API}/ejecutar-completo", params={"esperar": "true"}, headers=headers)
        assert r.status_code == 507, r.text
        assert r.json()["estado"] == "ERROR" and "Disco lleno" in r.json()["mensaje_error"]
        assert list(disco_pequeno.iterdir()) == []
        n = notificaciones(client, headers)[0]
        assert n["titulo"] == "❌ Error en Backup COMPLETO" and n["semaforo"] == "ROJO"
        assert "Disco lleno" in n["mensaje"] and "OSError" not in n["mensaje"]
        est = client.get(f"{API}/estadisticas", headers=headers).json()
        assert est["total_backups"] == 0 and est["ultimo_error"]["id_backup"] == r.json()["id_backup"]
        assert 0 <= est["espacio_libre_bytes"] <= 64 * 1024


# ------------------------------------------------------------------ consultar


def test_obtener_404_y_422(client: TestClient, admin_headers: H) -> None:
    r = client.get(f"{API}/99", headers=admin_headers)
    assert r.status_code == 404 and r.json()["detalle"] == "No existe el backup 99"
    for malo in ("0", "-1", "abc", str(2**63)):
        r = client.get(f"{API}/{malo}", headers=admin_headers)
        assert r.status_code == 422, (malo, r.text)
        assert r.json()["detalle"].startswith("Datos inválidos")
    assert client.get(f"{API}/99/descargar", headers=admin_headers).status_code == 404


def test_listar_filtros_orden_y_paginacion(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 5)
    f1 = backup(client, admin_headers)
    d1 = backup(client, admin_headers, "/ejecutar-diferencial")
    f2 = backup(client, admin_headers)
    err = diferencial_fallido(client, admin_headers, settings)
    envejecer(fresh_db, {f1["id_backup"]: 10, d1["id_backup"]: 9, f2["id_backup"]: 2})

    def ids(**params: Any) -> list[int]:
        r = client.get(f"{API}/listar", params=params, headers=admin_headers)
        assert r.status_code == 200, r.text
        return [b["id_backup"] for b in r.json()["items"]]

    todos = [err["id_backup"], f2["id_backup"], d1["id_backup"], f1["id_backup"]]
    assert ids() == todos  # del más nuevo al más viejo
    assert ids(tipo="COMPLETO") == [f2["id_backup"], f1["id_backup"]]
    assert ids(tipo="diferencial") == [err["id_backup"], d1["id_backup"]]
    assert ids(estado="ERROR") == [err["id_backup"]]
    assert ids(estado="COMPLETADO", tipo="DIFERENCIAL") == [d1["id_backup"]]
    hoy = datetime.now(settings.tz).date()
    assert ids(desde=str(hoy - timedelta(days=5))) == todos[:2]
    assert ids(hasta=str(hoy - timedelta(days=9))) == todos[2:]  # el día entero de `hasta`
    assert ids(desde=str(hoy - timedelta(days=9)), hasta=str(hoy - timedelta(days=9))) == [d1["id_backup"]]
    corte = (datetime.now(settings.tz) - timedelta(days=5)).isoformat()
    assert ids(desde=corte) == todos[:2] and ids(hasta=corte) == todos[2:]
    assert (
        ids(desde=(datetime.now(settings.tz) - timedelta(days=5)).replace(tzinfo=None).isoformat())
        == todos[:2]
    )
    r = client.get(f"{API}/listar", params={"limit": 2, "offset": 1}, headers=admin_headers)
    assert r.json()["total"] == 4 and [b["id_backup"] for b in r.json()["items"]] == todos[1:3]
    # Eliminados: ocultos salvo que se pidan.
    envejecer(fresh_db, {f1["id_backup"]: 200, d1["id_backup"]: 199})
    assert client.post(f"{API}/limpiar", headers=admin_headers).status_code == 200
    assert ids() == todos[:2]
    assert ids(incluir_eliminados="true") == todos
    eliminado = client.get(
        f"{API}/listar", params={"incluir_eliminados": "true", "tipo": "COMPLETO"}, headers=admin_headers
    ).json()["items"][-1]
    assert eliminado["eliminado"] is True and eliminado["fecha_eliminacion"]
    for params in (
        {"tipo": "SEMANAL"},
        {"estado": "ROTO"},
        {"desde": "ayer"},
        {"hasta": "2025-13-01"},
        {"desde": "2025-12-02", "hasta": "2025-12-01"},
        {"limit": 0},
        {"offset": -1},
        {"incluir_eliminados": "tal vez"},
    ):
        r = client.get(f"{API}/listar", params=params, headers=admin_headers)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["detalle"].startswith("Datos inválidos")


# ------------------------------------------------------------------ descargar


def test_descargar_entrega_los_bytes_del_archivo_con_su_md5(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 200)
    b = backup(client, admin_headers)
    path = settings.backup_dir / b["nombre_archivo"]
    contenido = path.read_bytes()
    r = client.get(f"{API}/{b['id_backup']}/descargar", headers=admin_headers)
    assert r.status_code == 200
    assert r.content == contenido and hashlib.md5(r.content).hexdigest() == b["hash_md5"]
    assert r.headers["content-type"] == "application/gzip"
    assert r.headers["content-disposition"] == f'attachment; filename="{b["nombre_archivo"]}"'
    assert int(r.headers["content-length"]) == len(contenido) == b["tamanio_bytes"]
    assert r.headers["x-checksum-md5"] == b["hash_md5"]
    assert base64.b64decode(r.headers["content-md5"]) == hashlib.md5(contenido).digest()
    # Con streaming de verdad: el cliente lo puede leer en trozos.
    with client.stream("GET", f"{API}/{b['id_backup']}/descargar", headers=admin_headers) as s:
        assert b"".join(s.iter_bytes()) == contenido

    # Un byte cambiado (mismo tamaño): 409, nunca se entregan bytes dañados.
    dañado = bytearray(contenido)
    dañado[len(dañado) // 2] ^= 0xFF
    path.write_bytes(bytes(dañado))
    r = client.get(f"{API}/{b['id_backup']}/descargar", headers=admin_headers)
    assert r.status_code == 409 and r.json()["detalle"].startswith("El archivo está dañado: MD5 no coincide")
    # Truncado: también 409 (el tamaño ya no es el del catálogo).
    path.write_bytes(contenido[:100])
    r = client.get(f"{API}/{b['id_backup']}/descargar", headers=admin_headers)
    assert r.status_code == 409 and "El archivo está dañado" in r.json()["detalle"]
    # Borrado a mano fuera del sistema: 410 con el motivo.
    path.unlink()
    r = client.get(f"{API}/{b['id_backup']}/descargar", headers=admin_headers)
    assert r.status_code == 410 and "ya no está en el directorio de backups" in r.json()["detalle"]
    assert client.get(f"{API}/{b['id_backup']}", headers=admin_headers).json()["archivo_disponible"] is False


# ------------------------------------------------------------------ limpiar y estadísticas


def test_limpiar_devuelve_lo_eliminado_y_avisa(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    fill(fresh_db, 5)
    r = client.post(f"{API}/limpiar", headers=admin_headers)
    assert r.status_code == 200 and r.json()["ids_eliminados"] == [] and r.json()["dias_retencion"] == 90
    f1 = backup(client, admin_headers)
    d1 = backup(client, admin_headers, "/ejecutar-diferencial")
    f2 = backup(client, admin_headers)
    d2 = backup(client, admin_headers, "/ejecutar-diferencial")
    (settings.backup_dir / "backup_20200101_000000_FULL.sql.gz.parcial").write_bytes(b"resto")
    envejecer(
        fresh_db, {f1["id_backup"]: 200, d1["id_backup"]: 199, f2["id_backup"]: 120, d2["id_backup"]: 3}
    )
    r = client.post(f"{API}/limpiar", headers=admin_headers)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["ids_eliminados"] == [f1["id_backup"], d1["id_backup"]]
    assert [e["nombre_archivo"] for e in res["eliminados"]] == [f1["nombre_archivo"], d1["nombre_archivo"]]
    assert res["bytes_liberados"] == f1["tamanio_bytes"] + d1["tamanio_bytes"]
    assert res["bytes_liberados_legible"] == human_size(res["bytes_liberados"])
    assert res["conservados_por_dependencia"] == [f2["id_backup"]]  # d2 lo necesita
    assert res["temporales_borrados"] == ["backup_20200101_000000_FULL.sql.gz.parcial"]
    assert sorted(p.name for p in settings.backup_dir.iterdir()) == sorted(
        n for b in (f2, d2) for n in (b["nombre_archivo"], b["nombre_archivo"] + MANIFEST_SUFFIX)
    )
    # Descargar lo eliminado: 410.
    r = client.get(f"{API}/{f1['id_backup']}/descargar", headers=admin_headers)
    assert r.status_code == 410 and "eliminado" in r.json()["detalle"] and "retención" in r.json()["detalle"]
    limpieza = [n for n in notificaciones(client, admin_headers) if n["titulo"] == "🧹 Limpieza de backups"]
    assert len(limpieza) == 1 and f1["nombre_archivo"] in limpieza[0]["mensaje"]
    assert "Se eliminaron 2 backups" in limpieza[0]["mensaje"]
    # Repetir no elimina nada más ni vuelve a avisar.
    assert client.post(f"{API}/limpiar", headers=admin_headers).json()["ids_eliminados"] == []
    assert len([n for n in notificaciones(client, admin_headers) if n["titulo"].startswith("🧹")]) == 1


def test_estadisticas_tras_una_historia_realista(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    vacia = client.get(f"{API}/estadisticas", headers=admin_headers)
    assert vacia.status_code == 200
    # La próxima ejecución la da el planificador de la app (`app.state.scheduler_info`).
    assert vacia.json()["proxima_ejecucion"] is None or datetime.fromisoformat(
        vacia.json()["proxima_ejecucion"]
    )
    assert vacia.json() | {
        "espacio_libre_bytes": None,
        "espacio_libre_legible": None,
        "proxima_ejecucion": None,
    } == {
        "total_backups": 0,
        "backups_completos": 0,
        "backups_diferenciales": 0,
        "espacio_usado_bytes": 0,
        "espacio_usado_legible": "0.00 B",
        "ultimo_backup_completo": None,
        "ultimo_backup_diferencial": None,
        "dias_retencion": 90,
        "backups_incrementales": 0,
        "ultimo_backup_incremental": None,
        "backups_habilitados": True,
        "ultimo_backup": None,
        "ultimo_backup_estado": None,
        "ultimo_error": None,
        "backups_con_error": 0,
        "backups_eliminados": 0,
        "backup_en_curso": None,
        "espacio_libre_bytes": None,
        "espacio_libre_legible": None,
        "proxima_ejecucion": None,
        # Añadida por las copias fuera del sitio (issue 12); sin BACKUP_REMOTO, solo "no configurado".
        "fuera_del_sitio": {
            "configurado": False,
            "destino": None,
            "cifrado": None,
            "dias_retencion": None,
            "ultima_copia": None,
            "id_ultima_copia": None,
            "copiados": None,
            "pendientes": None,
            "errores": None,
        },
    }
    fill(fresh_db, 30)
    # Dos semanas: completo, diferenciales, un fallo, otro completo, más diferenciales.
    f1 = backup(client, admin_headers)
    d1 = backup(client, admin_headers, "/ejecutar-diferencial")
    cambiar(fresh_db)
    d2 = backup(client, admin_headers, "/ejecutar-diferencial")
    err = diferencial_fallido(client, admin_headers, settings)
    f2 = backup(client, admin_headers)
    cambiar(fresh_db)
    d3 = backup(client, admin_headers, "/ejecutar-diferencial")
    envejecer(
        fresh_db,
        {
            f1["id_backup"]: 200,
            d1["id_backup"]: 199,
            d2["id_backup"]: 198,
            err["id_backup"]: 197,
            f2["id_backup"]: 8,
            d3["id_backup"]: 7,
        },
    )
    limpieza = client.post(f"{API}/limpiar", headers=admin_headers).json()
    assert limpieza["ids_eliminados"] == [f1["id_backup"], d1["id_backup"], d2["id_backup"], err["id_backup"]]
    d4 = backup(client, admin_headers, "/ejecutar-diferencial")
    cambiar(fresh_db)
    i1 = backup(client, admin_headers, "/ejecutar", tipo="INCREMENTAL")
    assert i1["tipo"] == "INCREMENTAL" and i1["id_backup_base"] == d4["id_backup"]

    # El planificador (cuando corre) informa la próxima ejecución del job backup_diario.
    proxima = datetime(2030, 1, 7, 3, 0, tzinfo=settings.tz)
    aplicacion(client).state.scheduler_info = lambda: {
        "activo": True,
        "jobs": [
            # La forma de la sección `scheduler` de /health (JobsService.health).
            {
                "job_id": "alertas_diarias",
                "proxima_ejecucion": datetime(2030, 1, 7, 6, 0, tzinfo=settings.tz).isoformat(),
            },
            {"job_id": "backup_diario", "proxima_ejecucion": proxima.isoformat()},
        ],
    }
    r = client.get(f"{API}/estadisticas", headers=admin_headers)
    assert r.status_code == 200, r.text
    est = r.json()
    vivos = [f2, d3, d4, i1]
    assert (est["total_backups"], est["backups_completos"], est["backups_diferenciales"]) == (4, 1, 2)
    assert est["backups_incrementales"] == 1
    tamanios = [(settings.backup_dir / b["nombre_archivo"]).stat().st_size for b in vivos]
    assert est["espacio_usado_bytes"] == sum(tamanios) == sum(b["tamanio_bytes"] for b in vivos)
    assert est["espacio_usado_legible"] == human_size(sum(tamanios))
    fecha = lambda b: client.get(f"{API}/{b['id_backup']}", headers=admin_headers).json()["fecha_creacion"]  # noqa: E731  # una consulta corta, legible en una línea
    assert datetime.fromisoformat(est["ultimo_backup_completo"]) == datetime.fromisoformat(fecha(f2))
    assert datetime.fromisoformat(est["ultimo_backup_diferencial"]) == datetime.fromisoformat(fecha(d4))
    assert datetime.fromisoformat(est["ultimo_backup_incremental"]) == datetime.fromisoformat(fecha(i1))
    assert est["dias_retencion"] == 90 and est["backups_habilitados"] is True
    assert est["backups_con_error"] == 1 and est["backups_eliminados"] == 4
    assert (
        est["ultimo_error"]["id_backup"] == err["id_backup"] and est["ultimo_error"]["tipo"] == "DIFERENCIAL"
    )
    assert "FileExistsError" in est["ultimo_error"]["mensaje"] and est["ultimo_error"]["fecha"]
    rojas = [n for n in notificaciones(client, admin_headers) if n["semaforo"] == "ROJO"]
    assert [(n["titulo"], n["referencia_id"]) for n in rojas] == [
        ("❌ Error en Backup DIFERENCIAL", err["id_backup"])
    ]
    assert "Ejecutado por admin" in rojas[0]["mensaje"]
    assert (
        est["ultimo_backup"]["id_backup"] == i1["id_backup"] and est["ultimo_backup_estado"] == "COMPLETADO"
    )
    assert est["backup_en_curso"] is None
    assert est["espacio_libre_bytes"] > 0 and est["espacio_libre_legible"].split()[1] in (
        "KB",
        "MB",
        "GB",
        "TB",
    )
    assert datetime.fromisoformat(est["proxima_ejecucion"]) == proxima
    # Un planificador que falla no tumba las estadísticas; BACKUP_ENABLED=false: sin próxima.
    aplicacion(client).state.scheduler_info = lambda: 1 / 0
    assert client.get(f"{API}/estadisticas", headers=admin_headers).json()["proxima_ejecucion"] is None
    aplicacion(client).state.scheduler_info = lambda: {
        "jobs": [{"job_id": "backup_diario", "proxima_ejecucion": proxima.isoformat()}]
    }
    settings.BACKUP_ENABLED = False
    est = client.get(f"{API}/estadisticas", headers=admin_headers).json()
    assert est["proxima_ejecucion"] is None and est["backups_habilitados"] is False


def test_cuerpo_ilegible_400_en_espanol(client: TestClient, admin_headers: H) -> None:
    r = client.post(
        f"{API}/1/enviar-email",
        content=b'{"email_destino": "\xff\xfe"}',
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text  # UTF-8 inválido: FastAPI no llega a validar
    assert r.json()["detalle"].startswith("No se pudo leer el cuerpo"), r.text


def test_los_backups_programados_tambien_notifican(
    client: TestClient, admin_headers: H, fresh_db: DatabaseServer, settings: Settings
) -> None:
    from inventario.jobs import backup_job
    from inventario.modules.planificador.resultado import ContextoJob

    fill(fresh_db, 5)
    runtime = aplicacion(client).state.runtime
    lunes = datetime(2026, 11, 30, 3, 0, tzinfo=settings.tz)
    for dia in (lunes, lunes + timedelta(days=1)):
        resultado = backup_job.run(ContextoJob(runtime, dia, manual=False, ejecutado_por="SCHEDULER"))
        assert resultado.estado == "OK", resultado.mensaje
    items = client.get(f"{API}/listar", headers=admin_headers).json()["items"]
    assert [(b["tipo"], b["ejecutado_por"]) for b in items] == [
        ("DIFERENCIAL", "SCHEDULER"),
        ("COMPLETO", "SCHEDULER"),
    ]
    titulos = [(n["titulo"], n["semaforo"]) for n in notificaciones(client, admin_headers)]
    assert titulos == [
        ("✅ Backup DIFERENCIAL completado", "VERDE"),
        ("✅ Backup COMPLETO completado", "VERDE"),
    ]
    assert all("Ejecutado por SCHEDULER" in n["mensaje"] for n in notificaciones(client, admin_headers))
