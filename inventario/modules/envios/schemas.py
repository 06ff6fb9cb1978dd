from __future__ import annotations

from pydantic import BaseModel, Field


class ResultadoCanal(BaseModel):
    canal: str = Field(
        description="Identificador estable del canal, sin secretos (email, json:1a2b3c4d5e...)"
    )
    destino: str = Field(description="A dónde va, con las credenciales tapadas")
    enviado: bool
    detalle: str | None = Field(None, description="Por qué falló, en español y sin secretos")


class PruebaAvisos(BaseModel):
    enviados: int
    fallidos: int
    canales: list[ResultadoCanal]
