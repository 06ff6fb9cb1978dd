"""`POST /api/v1/notificaciones/probar` (ADMIN): un mensaje de prueba a cada canal configurado.

200 con el resultado por canal (también si alguno falló: la respuesta dice cuál y por qué);
409 si no hay ningún canal configurado. Ni la respuesta ni los logs llevan las URLs de los canales.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from inventario.modules.envios import service
from inventario.modules.envios.schemas import PruebaAvisos
from inventario.modules.usuarios.dependencies import AdminUser
from inventario.openapi import CON_TOKEN, errores

router = APIRouter(prefix="/api/v1/notificaciones", tags=["notificaciones"], responses=CON_TOKEN)


@router.post(
    "/probar",
    response_model=PruebaAvisos,
    summary="Enviar un mensaje de prueba a cada canal de avisos",
    description="Envía un aviso de prueba por email y por cada URL de NOTIFICACIONES_URLS y dice, "
    "canal por canal, si llegó o por qué no (sin secretos). Requiere ADMIN.",
    responses=errores(403, 409, e409="No hay canales de avisos configurados"),
)
def probar(request: Request, user: AdminUser) -> dict[str, Any]:
    resultados = service.probar(request.app.state.settings, user.nombre_usuario)
    enviados = sum(1 for r in resultados if r["enviado"])
    return {"enviados": enviados, "fallidos": len(resultados) - enviados, "canales": resultados}
