from __future__ import annotations

from datetime import datetime

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


class EstadoEnvio(BaseModel):
    canal: str = Field(description="Identificador del canal, sin secretos (email, json:1a2b3c4d5e, ping)")
    destino: str = Field(description="A dónde va, con las credenciales tapadas")
    estado: str = Field(description="PENDIENTE, ENVIADA, ERROR (se reintenta) o DESCARTADA")
    intentos: int
    ultimo_error: str | None = Field(None, description="Por qué falló el último intento, sin secretos")
    proximo_intento: datetime | None = Field(None, description="Cuándo se reintenta; vacío si ya no")
    fecha_envio: datetime | None = None


class EnviosNotificacion(BaseModel):
    id_notificacion: int
    envio: str = Field(
        description="PENDIENTE (aún sin planificar), ENVIO (su propio mensaje), RESUMEN (espera el resumen "
        "diario), INCLUIDA (va en un resumen), DUPLICADA (su incidente ya se avisó) u OMITIDA (bajo "
        "NOTIFICACIONES_SEMAFORO_MINIMO, sin canales o anterior a los avisos)"
    )
    clave_incidente: str | None = None
    id_mensaje: int | None = None
    canales: list[EstadoEnvio]
