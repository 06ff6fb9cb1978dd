"""Errores de dominio (sin HTTP) y su traducción a respuestas en español."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("inventario.errores")


class DomainError(Exception):
    """Error de negocio; `status` es el código HTTP que le corresponde."""

    status = 400

    def __init__(self, mensaje: str) -> None:
        super().__init__(mensaje)
        self.mensaje = mensaje


class NoEncontrado(DomainError):
    status = 404


class Conflicto(DomainError):
    status = 409


class NoAutorizado(DomainError):
    status = 401


class Prohibido(DomainError):
    status = 403


class Invalido(DomainError):
    status = 422


class DemasiadoGrande(DomainError):
    status = 413


class Desaparecido(DomainError):
    status = 410


class ServicioExternoError(DomainError):
    status = 502


class NoDisponible(DomainError):
    status = 503


_CAMPO = {"body": "cuerpo", "query": "parámetro", "path": "ruta", "header": "cabecera"}

_TRADUCCIONES = {
    "missing": "es obligatorio",
    "string_too_short": "debe tener al menos {min_length}",
    "string_too_long": "debe tener como máximo {max_length}",
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "float_parsing": "debe ser un número",
    "bool_parsing": "debe ser verdadero o falso",
    "date_from_datetime_parsing": "debe ser una fecha AAAA-MM-DD",
    "date_parsing": "debe ser una fecha AAAA-MM-DD",
    "datetime_parsing": "debe ser una fecha y hora ISO 8601",
    "datetime_from_date_parsing": "debe ser una fecha y hora ISO 8601",
    "greater_than": "debe ser mayor que {gt}",
    "greater_than_equal": "debe ser mayor o igual que {ge}",
    "less_than": "debe ser menor que {lt}",
    "less_than_equal": "debe ser menor o igual que {le}",
    "literal_error": "debe ser uno de: {expected}",
    "enum": "debe ser uno de: {expected}",
    "json_invalid": "el cuerpo no es JSON válido",
    "model_attributes_type": "debe ser un objeto JSON",
    "dict_type": "debe ser un objeto JSON",
    "string_type": "debe ser texto",
    "value_error": "{msg}",
    "extra_forbidden": "no es un campo permitido",
    "int_from_float": "debe ser un número entero",
    "string_pattern_mismatch": "tiene un formato inválido",
    "string_unicode": "debe ser texto válido (UTF-8)",
    "bool_type": "debe ser verdadero o falso",
    "float_type": "debe ser un número",
    "finite_number": "debe ser un número finito",
    "list_type": "debe ser una lista",
    "too_long": "tiene demasiados elementos (máximo {max_length})",
    "too_short": "tiene muy pocos elementos (mínimo {min_length})",
    "date_type": "debe ser una fecha AAAA-MM-DD",
    "datetime_type": "debe ser una fecha y hora ISO 8601",
    "timezone_aware": "debe llevar zona horaria",
    "timezone_naive": "no debe llevar zona horaria",
    "url_parsing": "debe ser una URL",
    "url_type": "debe ser una URL",
    "uuid_parsing": "debe ser un UUID",
    "decimal_parsing": "debe ser un número",
    "multiple_of": "debe ser múltiplo de {multiple_of}",
    "none_required": "debe ser null",
    "json_type": "debe ser JSON",
}

# Los límites de largo de un texto: el número con su palabra ("al menos 8 caracteres").
_LARGOS = {"string_too_short": "min_length", "string_too_long": "max_length"}


def cantidad(n: int, singular: str, plural: str | None = None) -> str:
    """`1 lote vencido`, `2 lotes vencidos`: el número con la forma que concuerda (0 va en plural)."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


# Lo que pydantic agrega en inglés dentro de `ctx`.
_O = re.compile(r" or (?=[^,]*$)")


def traducir(err: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    if err.get("type") == "json_invalid":
        # FastAPI pone en `loc` la posición del error ("body", 15), no un campo.
        posicion = f" (cerca del carácter {loc[1]})" if len(loc) > 1 and loc[1].isdigit() else ""
        return f"el cuerpo no es JSON válido{posicion}"
    where = _CAMPO.get(loc[0], loc[0]) if loc else ""
    field = ".".join(loc[1:]) or where
    plantilla = _TRADUCCIONES.get(err.get("type", ""), "es inválido")
    ctx = {k: v for k, v in (err.get("ctx") or {}).items()}
    if "expected" in ctx:  # literal_error / enum: "'A', 'B' or 'C'" → "'A', 'B' o 'C'"
        ctx["expected"] = _O.sub(" o ", str(ctx["expected"]))
    if (limite := _LARGOS.get(err.get("type", ""))) and isinstance(ctx.get(limite), int):
        ctx[limite] = cantidad(ctx[limite], "carácter", "caracteres")
    msg = str(err.get("msg", ""))
    if err.get("type") == "value_error":
        if "error" in ctx:  # ValueError de nuestros validadores: ya en español
            ctx["msg"] = str(ctx["error"])
        elif msg.startswith("Value error, "):
            ctx["msg"] = msg.removeprefix("Value error, ")
        elif "reason" in ctx:  # EmailStr (email-validator): su motivo viene en inglés
            ctx["msg"] = "no es una dirección de correo válida"
        else:
            ctx["msg"] = "es inválido"
    ctx.setdefault("msg", msg)
    try:
        texto = plantilla.format(**ctx)
    except (KeyError, IndexError):
        texto = "es inválido"
    return f"{field}: {texto}" if field else texto


def literal_paths(app: FastAPI) -> dict[str, set[str]]:
    """Rutas sin parámetros → sus métodos (las registra `main.include_routers`)."""
    paths: dict[str, set[str]] = getattr(app.state, "rutas_literales", {})
    return paths


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detalle": exc.mensaje}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metodos = literal_paths(request.app).get(request.url.path)
        if metodos and request.method not in metodos:
            # GET /backup/ejecutar cae en GET /backup/{id_backup} y "ejecutar" no es un id: lo que
            # pasa en realidad es que esa ruta existe con otro método.
            permitidos = ", ".join(sorted(metodos))
            return JSONResponse(
                {"detalle": f"Método no permitido; esta ruta admite: {permitidos}"},
                status_code=405,
                headers={"Allow": permitidos},
            )
        errores = [traducir(e) for e in exc.errors()]
        return JSONResponse(
            {"detalle": "Datos inválidos: " + "; ".join(errores), "errores": errores},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        mensajes = {
            400: "No se pudo leer el cuerpo de la petición: revise el Content-Type y el formato",
            404: "Recurso no encontrado",
            405: "Método no permitido",
        }
        detalle = (
            exc.detail
            if isinstance(exc.detail, str) and exc.status_code not in mensajes
            else mensajes.get(exc.status_code, str(exc.detail))
        )
        return JSONResponse({"detalle": detalle}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("Base de datos no disponible: %s", exc.orig.__class__.__name__ if exc.orig else exc)
        return JSONResponse({"detalle": "Base de datos no disponible; intente más tarde"}, status_code=503)

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return JSONResponse(
                {"detalle": "Base de datos no disponible; intente más tarde"}, status_code=503
            )
        log.exception("Error de base de datos no previsto")
        return JSONResponse({"detalle": "Error interno de base de datos"}, status_code=500)
