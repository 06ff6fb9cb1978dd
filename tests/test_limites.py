"""Límites de cada petición (URL, cabeceras, cuerpo): se rechazan antes de rutas, dependencias y
autenticación, con su código y un `detalle` en español."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from inventario.request_limits import MAX_BODY, MAX_HEADER, MAX_URL


def test_url_enorme_414_sin_login(client: TestClient) -> None:
    # El caso de la sonda: 15 000 caracteres en la query de una ruta que no existe.
    response = client.get("/nope?" + "A" * 15_000)
    assert response.status_code == 414
    assert "URL es demasiado larga" in response.json()["detalle"]
    # Justo en el límite pasa (y da el 404 de siempre).
    path = "/nope?"
    assert client.get(path + "A" * (MAX_URL - len(path))).status_code == 404


def test_cabecera_enorme_431(client: TestClient) -> None:
    response = client.get("/health", headers={"X-Relleno": "b" * (MAX_HEADER + 1)})
    assert response.status_code == 431
    assert "cabecera" in response.json()["detalle"]
    token = "Bearer " + "a" * (MAX_HEADER + 1)
    assert client.get("/api/v1/productos", headers={"Authorization": token}).status_code == 431


def test_cuerpo_enorme_413_con_y_sin_content_length(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    big = b'{"nombre": "' + b"x" * MAX_BODY + b'"}'
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = client.post("/api/v1/productos", content=big, headers=headers)
    assert response.status_code == 413
    assert "demasiado grande" in response.json()["detalle"]

    def chunks() -> Iterator[bytes]:  # sin Content-Length: se cuenta mientras llega
        yield b'{"nombre": "'
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = client.post("/api/v1/productos", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert "demasiado grande" in response.json()["detalle"]
    # Nada se creó y el servicio sigue atendiendo.
    assert client.get("/api/v1/productos", headers=admin_headers).json()["total"] == 0
