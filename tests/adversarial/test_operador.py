"""Un OPERADOR (o un ADMIN descuidado) contra el servicio real: rutas de ADMIN, escalada de rol,
rutas con trucos para salir de la carpeta de backups y dejar al servicio sin administrador."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.adversarial.conftest import Objetivo
from tests.adversarial.rutas import SOLO_ADMIN, rutas

TRUCOS = [
    "..%2F..%2Fdata%2Fsecret_key",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..",
    "1%2F..%2F..",
    "1;DROP TABLE usuarios",
    "%00",
    "%201",
    "1e3",
    "99999999999999999999",
    "-1",
]


def test_operador_recibe_403_en_cada_ruta_de_admin(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        solo_admin = [r for r in rutas(c) if SOLO_ADMIN.search(r.template)]
        assert len(solo_admin) >= 15
        for ruta in solo_admin:
            r = c.request(ruta.method, ruta.path(), headers=objetivo.operador)
            assert r.status_code == 403, (ruta, r.text)
            assert r.json()["detalle"] == "Se requiere el rol ADMIN"
        # Tampoco con un truco en el id: el rol se mira antes que nada.
        for truco in TRUCOS[:4]:
            r = c.get(f"/api/v1/backup/{truco}/descargar", headers=objetivo.operador)
            assert r.status_code in (403, 404), (truco, r.status_code)
            assert b"secret" not in r.content and b"root:" not in r.content


def test_operador_no_se_sube_el_rol(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        yo = c.get("/api/v1/auth/yo", headers=objetivo.operador).json()
        assert yo["rol"] == "OPERADOR"
        r = c.patch(f"/api/v1/usuarios/{yo['id_usuario']}", json={"rol": "ADMIN"}, headers=objetivo.operador)
        assert r.status_code == 403
        r = c.post(
            "/api/v1/usuarios",
            json={"nombre_usuario": "colado", "password": "clave-colada-1", "rol": "ADMIN"},
            headers=objetivo.operador,
        )
        assert r.status_code == 403
        assert c.get("/api/v1/auth/yo", headers=objetivo.operador).json()["rol"] == "OPERADOR"


def test_rutas_con_trucos_nunca_sirven_un_archivo(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        for truco in TRUCOS:
            for path in (f"/api/v1/backup/{truco}/descargar", f"/api/v1/backup/{truco}"):
                r = c.get(path, headers=objetivo.admin)
                assert r.status_code in (404, 405, 422), (path, r.status_code, r.text[:200])
                assert r.headers["content-type"] == "application/json"
                assert b"secret" not in r.content and b"root:" not in r.content


def test_el_ultimo_admin_no_se_degrada_ni_se_desactiva(objetivo: Objetivo) -> None:
    with objetivo.cliente() as c:
        yo = c.get("/api/v1/auth/yo", headers=objetivo.admin).json()["id_usuario"]
        for cambio in ({"rol": "OPERADOR"}, {"activo": False}):
            r = c.patch(f"/api/v1/usuarios/{yo}", json=cambio, headers=objetivo.admin)
            assert r.status_code == 409 and "único ADMIN activo" in r.json()["detalle"]
        assert c.get("/api/v1/backup/listar", headers=objetivo.admin).status_code == 200


def test_diez_backups_completos_a_la_vez_uno_corre_y_nueve_409(objetivo: Objetivo) -> None:
    def lanzar(_: int) -> httpx.Response:
        with objetivo.cliente() as c:
            return c.post("/api/v1/backup/ejecutar-completo", headers=objetivo.admin)

    with ThreadPoolExecutor(10) as pool:
        codigos = sorted(r.status_code for r in pool.map(lanzar, range(10)))
    assert codigos == [202] + [409] * 9, codigos
