"""El último ADMIN activo no se puede degradar ni desactivar (409): sin él nadie administra
usuarios ni usa la API de backups."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import login

H = dict[str, str]


def _usuarios(client: TestClient, headers: H) -> dict[str, dict]:
    return {u["nombre_usuario"]: u for u in client.get("/api/v1/usuarios", headers=headers).json()["items"]}


def test_el_unico_admin_no_se_degrada_ni_se_desactiva(client: TestClient, admin_headers: H) -> None:
    yo = client.get("/api/v1/auth/yo", headers=admin_headers).json()["id_usuario"]
    for cambio in ({"rol": "OPERADOR"}, {"activo": False}, {"rol": "OPERADOR", "activo": False}):
        r = client.patch(f"/api/v1/usuarios/{yo}", json=cambio, headers=admin_headers)
        assert r.status_code == 409, r.text
        assert "único ADMIN activo" in r.json()["detalle"]
    admin = _usuarios(client, admin_headers)["admin"]
    assert admin["rol"] == "ADMIN" and admin["activo"] is True
    # Lo que no lo deja fuera sigue permitido.
    r = client.patch(
        f"/api/v1/usuarios/{yo}", json={"nombre_completo": "Jefa", "rol": "ADMIN"}, headers=admin_headers
    )
    assert r.status_code == 200


def test_con_otro_admin_activo_si_se_puede_y_el_ultimo_queda_protegido(
    client: TestClient, admin_headers: H
) -> None:
    r = client.post(
        "/api/v1/usuarios",
        json={"nombre_usuario": "segunda", "password": "clave-segunda", "rol": "ADMIN"},
        headers=admin_headers,
    )
    segunda = r.json()["id_usuario"]
    # Un ADMIN inactivo no cuenta como respaldo.
    assert (
        client.patch(f"/api/v1/usuarios/{segunda}", json={"activo": False}, headers=admin_headers).status_code
        == 200
    )
    yo = client.get("/api/v1/auth/yo", headers=admin_headers).json()["id_usuario"]
    assert (
        client.patch(f"/api/v1/usuarios/{yo}", json={"activo": False}, headers=admin_headers).status_code
        == 409
    )
    assert (
        client.patch(f"/api/v1/usuarios/{segunda}", json={"activo": True}, headers=admin_headers).status_code
        == 200
    )
    r = client.patch(f"/api/v1/usuarios/{yo}", json={"rol": "OPERADOR"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["rol"] == "OPERADOR"
    otra = login(client, "segunda", "clave-segunda")
    r = client.patch(f"/api/v1/usuarios/{segunda}", json={"rol": "OPERADOR"}, headers=otra)
    assert r.status_code == 409
    # Degradar o desactivar a un OPERADOR nunca choca con la regla.
    assert client.patch(f"/api/v1/usuarios/{yo}", json={"activo": False}, headers=otra).status_code == 200
