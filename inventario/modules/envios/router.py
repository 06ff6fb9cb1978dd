"""Los avisos fuera de la aplicación, vistos desde la API. Ni las respuestas ni los logs llevan las
URLs de los canales (un canal se muestra como `json:1a2b3c4d5e` y `json://usuario:****@servidor`).

- `POST /api/v1/notificaciones/probar` (ADMIN): un mensaje de prueba a cada canal configurado; 200
  con el resultado por canal (también si alguno falló: dice cuál y por qué); 409 sin canales.
- `GET /api/v1/notificaciones/{id}/envios`: cómo va el envío de una notificación, canal por canal
  (estado, intentos, último error, próximo intento). Cualquier rol.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from inventario.database import SessionDep
from inventario.modules.envios import service
from inventario.modules.envios.schemas import EnviosNotificacion, PruebaAvisos
from inventario.modules.usuarios.dependencies import AdminUser, CurrentUser
from inventario.openapi import CON_TOKEN, errores
from inventario.pagination import Id

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


@router.get(
    "/{id_notificacion}/envios",
    response_model=EnviosNotificacion,
    summary="Estado del envío de una notificación por canal",
    description="Si la notificación salió (o espera al resumen diario), y en cada canal: PENDIENTE, "
    "ENVIADA, ERROR (con el último error y el próximo intento) o DESCARTADA. Cualquier rol.",
    responses=errores(404, 422, e404="No existe la notificación"),
)
def envios(id_notificacion: Id, request: Request, session: SessionDep, _: CurrentUser) -> dict[str, Any]:
    return service.envios_de(session, request.app.state.settings, id_notificacion)
