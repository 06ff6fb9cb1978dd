"""Lo que el OpenAPI dice de los errores: cada ruta documenta los códigos que puede devolver, con el
cuerpo `{"detalle": ...}` de `errors.install_handlers`. Los clientes generados y los consumidores de
la API se guían por esto; `tests/test_arranque.py` y `tests/test_openapi_vivo.py` lo comprueban."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field


class ErrorSalida(BaseModel):
    """El cuerpo de todo error."""

    detalle: str = Field(description="Qué pasó, en español")
    errores: list[str] | None = Field(None, description="Con 422: un texto por campo inválido")


TEXTOS = {
    400: "El cuerpo no se pudo leer (Content-Type o formato)",
    401: "Falta el token, no es válido o venció",
    403: "El rol del usuario no alcanza (se requiere ADMIN)",
    404: "No existe",
    409: "Conflicto con el estado actual (duplicado, stock insuficiente, desactivado...)",
    413: "Demasiado grande",
    422: "Datos inválidos: un texto por campo en `errores`",
    503: "Base de datos no disponible; intente más tarde",
}


def errores(*codigos: int, **textos: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` de FastAPI para estos códigos; `textos` cambia la descripción (`e404="..."`)."""
    return {c: {"model": ErrorSalida, "description": textos.get(f"e{c}", TEXTOS[c])} for c in sorted(codigos)}


# Toda ruta con token y base de datos (en el APIRouter): 401 sin token, 503 con la base caída. Cada
# ruta con parámetros o cuerpo agrega 422 (así el esquema es el nuestro, no el de FastAPI).
CON_TOKEN = errores(401, 503)


def completar(app: FastAPI) -> None:
    """Lo que FastAPI no dice solo: el texto "Successful Response" en español, y el 400 que toda
    operación con cuerpo devuelve si este no se puede leer (p. ej. bytes que no son UTF-8)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            error = {
                "description": TEXTOS[400],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorSalida"}}},
            }
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    responses = op.setdefault("responses", {})
                    for resp in responses.values():
                        if resp.get("description") == "Successful Response":
                            resp["description"] = "Correcto"
                    if "requestBody" in op:
                        responses.setdefault("400", error)
            _accent_titles(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI prevé reemplazar el generador del esquema


# Los títulos que FastAPI genera de los nombres de campo ("Codigo", "Stock Minimo") pierden las
# tildes de los nombres en español sin tildes del plan: en /docs se muestran con ellas.
TILDES = {
    "actualizacion": "actualización",
    "ambito": "ámbito",
    "codigo": "código",
    "creacion": "creación",
    "descripcion": "descripción",
    "dias": "días",
    "duracion": "duración",
    "ejecucion": "ejecución",
    "eliminacion": "eliminación",
    "envio": "envío",
    "instantanea": "instantánea",
    "leida": "leída",
    "leidas": "leídas",
    "minimo": "mínimo",
    "notificacion": "notificación",
    "programacion": "programación",
    "proxima": "próxima",
    "proximo": "próximo",
    "retencion": "retención",
    "revision": "revisión",
    "semaforo": "semáforo",
    "tamanio": "tamaño",
    "titulo": "título",
    "ultima": "última",
    "ultimo": "último",
}


def _accent_title(title: str) -> str:
    words = title.split(" ")
    fixed = []
    for word in words:
        accented = TILDES.get(word.lower())
        if accented is None:
            fixed.append(word)
        else:
            fixed.append(accented.capitalize() if word[:1].isupper() else accented)
    return " ".join(fixed)


def _accent_titles(node: Any) -> None:
    """Los `title` de propiedades y parámetros, con tildes (los de los esquemas son nombres de clase
    pegados, "ProductoSalida": no coinciden con ninguna palabra y quedan igual)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                node[key] = _accent_title(value)
            else:
                _accent_titles(value)
    elif isinstance(node, list):
        for item in node:
            _accent_titles(item)
