"""Las rutas del servicio, leídas de su propio /openapi.json (una ruta nueva entra sola en la suite)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

PUBLICAS = {("GET", "/health"), ("POST", "/api/v1/auth/login")}
# Rutas que exigen ADMIN: un OPERADOR recibe 403 en todas.
SOLO_ADMIN = re.compile(r"^/api/v1/(backup|usuarios|jobs)(/|$)|^/api/v1/notificaciones/probar$")
# Con un token ADMIN y datos válidos harían algo caro o con efectos (backups, jobs, correo): la
# suite solo les manda entradas inválidas.
CON_EFECTOS = re.compile(
    r"/backup/(ejecutar|limpiar|\{id_backup\}/enviar-email)|/jobs/\{job_id\}/ejecutar|/notificaciones/probar"
)


@dataclass(frozen=True)
class Ruta:
    method: str
    template: str
    params: tuple[str, ...]
    body: bool

    def path(self, value: str = "1") -> str:
        path = self.template
        for name in self.params:
            path = path.replace("{" + name + "}", value)
        return path


def rutas(client: httpx.Client) -> list[Ruta]:
    spec = client.get("/openapi.json").json()
    found = []
    for template, ops in spec["paths"].items():
        for method, op in ops.items():
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            found.append(Ruta(method.upper(), template, params, "requestBody" in op))
    assert len(found) > 30, found
    return found
