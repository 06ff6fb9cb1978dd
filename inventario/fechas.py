"""El filtro por fechas de los listados (`?desde=...&hasta=...`), con un solo significado en toda la API.

- `desde` está incluido: `fecha >= desde`.
- `hasta` es el final del rango: una fecha `AAAA-MM-DD` incluye **todo ese día**; una fecha y hora
  es el instante en que el rango termina, sin incluirlo (`fecha < hasta`). Así `hasta=2025-12-03`
  trae lo del 3 de diciembre, y `desde=X&hasta=Y` con instantes parte el tiempo sin solaparse.
- Sin zona horaria, las fechas son de ZONA_HORARIA.
- Un rango vacío (`desde` no anterior al final del rango) es un 422: con fechas, `desde` igual a
  `hasta` es un día entero y vale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator, WithJsonSchema
from sqlalchemy import ColumnElement

from inventario.errors import Invalido

_FECHA = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FECHA_HORA = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]")
_MENSAJE = "debe ser una fecha y hora ISO 8601 o una fecha AAAA-MM-DD"


def _parser(fin: bool) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError(_MENSAJE)
        texto = value.strip()
        try:
            if _FECHA.fullmatch(texto):
                dia = datetime.fromisoformat(texto)
                if not fin:
                    return dia
                try:
                    return dia + timedelta(days=1)  # el día entero: hasta el comienzo del siguiente
                except OverflowError:
                    return datetime.max  # 9999-12-31: sin límite
            if not _FECHA_HORA.match(texto):
                raise ValueError
            return datetime.fromisoformat(texto.replace("z", "Z").replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise ValueError(_MENSAJE) from None

    return parse


_ESQUEMA = WithJsonSchema({"type": "string", "format": "date-time"})
_Desde = Annotated[datetime, BeforeValidator(_parser(False)), _ESQUEMA]
_Hasta = Annotated[datetime, BeforeValidator(_parser(True)), _ESQUEMA]


@dataclass(frozen=True)
class RangoFechas:
    """`[desde, hasta)`, ambos con zona horaria; `None` es sin límite por ese lado."""

    desde: datetime | None = None
    hasta: datetime | None = None

    def where(self, column: Any) -> list[ColumnElement[bool]]:
        """Las condiciones sobre `column` (una columna `timestamptz`)."""
        conditions: list[ColumnElement[bool]] = []
        if self.desde is not None:
            conditions.append(column >= self.desde)
        if self.hasta is not None:
            conditions.append(column < self.hasta)
        return conditions


def armar_rango(desde: datetime | None, hasta: datetime | None, tz: tzinfo) -> RangoFechas:
    """El rango de dos extremos ya leídos: los que no traen zona son de ZONA_HORARIA; vacío → 422."""
    desde = desde.replace(tzinfo=tz) if desde is not None and desde.tzinfo is None else desde
    hasta = hasta.replace(tzinfo=tz) if hasta is not None and hasta.tzinfo is None else hasta
    if desde is not None and hasta is not None and desde >= hasta:
        raise Invalido("Datos inválidos: 'desde' debe ser anterior o igual a 'hasta'")
    return RangoFechas(desde, hasta)


def rango_de_textos(desde: str, hasta: str, tz: tzinfo) -> RangoFechas:
    """El rango de los textos de un formulario (la consola web), con las mismas reglas que la API;
    un texto vacío es sin límite por ese lado."""

    def leer(texto: str, fin: bool) -> datetime | None:
        if not texto.strip():
            return None
        try:
            valor = _parser(fin)(texto)
        except ValueError:
            raise Invalido(f"La fecha {texto!r} no es válida: use AAAA-MM-DD") from None
        assert isinstance(valor, datetime)  # _parser devuelve datetime o lanza ValueError
        return valor

    return armar_rango(leer(desde, False), leer(hasta, True), tz)


def rango_fechas(
    request: Request,
    desde: Annotated[
        _Desde | None,
        Query(description="Desde esta fecha, incluida (AAAA-MM-DD o ISO 8601; sin zona: ZONA_HORARIA)"),
    ] = None,
    hasta: Annotated[
        _Hasta | None,
        Query(
            description="Hasta esta fecha: AAAA-MM-DD incluye todo ese día; una fecha y hora es el "
            "instante final, excluido"
        ),
    ] = None,
) -> RangoFechas:
    return armar_rango(desde, hasta, request.app.state.settings.tz)


RangoFechasDep = Annotated[RangoFechas, Depends(rango_fechas)]
