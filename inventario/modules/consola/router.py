"""Consola web (`/consola`): las vistas solo leen el formulario, llaman a los servicios y pintan.

ADMIN ve todas las páginas; OPERADOR, Inventario y Notificaciones (las demás responden 403 aunque
se escriba la dirección a mano). Todo POST lleva el token CSRF (`sesion.CsrfDep`) y termina en
una redirección 303 con un aviso (POST → 303 → GET). Los errores salen como páginas en español
(`instalar`), nunca como trazas ni JSON.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from time import time_ns
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inventario.database import SessionDep
from inventario.errors import DomainError, Invalido, cantidad, traducir
from inventario.fechas import rango_de_textos
from inventario.modules.consola import puertos, sesion
from inventario.modules.consola import service as vistas
from inventario.modules.consola.sesion import AdminConsola, CsrfDep, UsuarioConsola, redirigir
from inventario.modules.notificaciones import service as notificaciones
from inventario.modules.usuarios import service as usuarios
from inventario.modules.usuarios.model import Usuario
from inventario.modules.usuarios.router import login_throttle
from inventario.modules.usuarios.schemas import LoginEntrada, UsuarioActualizar, UsuarioCrear
from inventario.pagination import Pagina
from inventario.security import create_token

log = logging.getLogger(__name__)
RAIZ = sesion.RAIZ
_AQUI = Path(__file__).parent
plantillas = Jinja2Templates(directory=str(_AQUI / "plantillas"))
plantillas.env.globals.update(RAIZ=RAIZ, fecha=vistas.fecha, tamano=vistas.tamano, duracion=vistas.duracion)

router = APIRouter(prefix=RAIZ, include_in_schema=False)

FILAS = 25  # filas por página en los listados

# (ruta, título, solo ADMIN)
MENU = [
    ("panel", "Panel", True),
    ("backups", "Backups", True),
    ("tareas", "Tareas", True),
    ("notificaciones", "Notificaciones", False),
    ("inventario", "Inventario", False),
    ("usuarios", "Usuarios", True),
]

# Sin recursos de otros sitios ni scripts en línea: solo lo que sirve la propia consola.
_CABECERAS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def pagina(
    request: Request,
    nombre: str,
    contexto: dict[str, Any],
    status: int = 200,
    usuario: Usuario | None = None,
) -> HTMLResponse:
    """Pinta una plantilla con lo común (menú, aviso, token CSRF) y fija las cookies del caso."""
    usuario = usuario or getattr(request.state, "usuario", None)
    menu = [
        (r, t)
        for r, t, solo_admin in MENU
        if usuario is not None and (usuario.rol == "ADMIN" or not solo_admin)
    ]
    aviso = sesion.leer_aviso(request)
    response = plantillas.TemplateResponse(
        request,
        nombre,
        {
            "usuario": usuario,
            "settings": request.app.state.settings,
            "menu": menu,
            "aviso": aviso,
            "csrf": sesion.token_csrf(request),
            **contexto,
        },
        status_code=status,
        headers=_CABECERAS,
    )
    sesion.fijar_previa(request, response)
    if aviso is not None:
        sesion.borrar_cookie(request, response, sesion.COOKIE_AVISO)
    return response


def _ahora(request: Request) -> datetime:
    return datetime.now(request.app.state.settings.tz)


def _paginas(total: int, pagina_actual: int) -> dict[str, int]:
    return {"actual": pagina_actual, "total": max(1, math.ceil(total / FILAS)), "filas": total}


NumPagina = Annotated[int, Query(ge=1, le=100000)]


def _de_la_pagina(p: int) -> Pagina:
    """Las filas de la página `p` (desde 1) de un listado de la consola."""
    return Pagina(offset=(p - 1) * FILAS, limit=FILAS)


# ------------------------------------------------------------------ entrar / salir


@router.get("")
def inicio(request: Request) -> Response:
    user = sesion.usuario_consola(request)
    return RedirectResponse(f"{RAIZ}/{'panel' if user.rol == 'ADMIN' else 'inventario'}", status_code=303)


@router.get("/entrar")
def entrar_form(request: Request) -> HTMLResponse:
    return pagina(request, "entrar.html", {"nombre_usuario": ""})


@router.post("/entrar", dependencies=[CsrfDep])
def entrar(
    request: Request,
    session: SessionDep,
    nombre_usuario: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    settings = request.app.state.settings
    cliente = request.client.host if request.client else "desconocido"
    try:
        datos = _datos(LoginEntrada, nombre_usuario=nombre_usuario, password=password)
        # El mismo servicio y el mismo contador de intentos que POST /api/v1/auth/login: fallar
        # aquí pausa también la API (y al revés), con los mismos registros en sesiones.log.
        user = usuarios.authenticate(
            session, datos.nombre_usuario, datos.password, cliente, login_throttle(request)
        )
    except DomainError as exc:
        return pagina(
            request,
            "entrar.html",
            {"nombre_usuario": nombre_usuario, "error": exc.mensaje},
            status=exc.status,
        )
    token = create_token(request.app.state.secret_key, user.id_usuario, user.rol, settings.TOKEN_MINUTOS)
    response = RedirectResponse(f"{RAIZ}/{'panel' if user.rol == 'ADMIN' else 'inventario'}", status_code=303)
    sesion.abrir_sesion(request, response, token, settings.TOKEN_MINUTOS)
    return response


@router.post("/salir", dependencies=[CsrfDep])
def salir(request: Request) -> Response:
    response = RedirectResponse(f"{RAIZ}/entrar", status_code=303)
    sesion.cerrar_sesion(request, response)
    return response


# ------------------------------------------------------------------ panel


@router.get("/panel")
def panel(request: Request, session: SessionDep, _: AdminConsola) -> HTMLResponse:
    datos = vistas.panel(
        request.app.state.runtime, session, puertos.info_planificador(request), _ahora(request)
    )
    return pagina(request, "panel.html", {"titulo": "Panel", "columnas": vistas.COLUMNAS_BACKUP, **datos})


# ------------------------------------------------------------------ backups


@router.get("/backups")
def backups(
    request: Request,
    session: SessionDep,
    _: AdminConsola,
    tipo: Annotated[str, Query(max_length=20)] = "",
    estado: Annotated[str, Query(max_length=20)] = "",
    desde: Annotated[str, Query(max_length=10)] = "",
    hasta: Annotated[str, Query(max_length=10)] = "",
    eliminados: bool = False,
    p: NumPagina = 1,
) -> HTMLResponse:
    if tipo and tipo not in vistas.TIPOS_BACKUP:
        raise Invalido(f"Tipo desconocido: {tipo}")
    if estado and estado not in vistas.ESTADOS_BACKUP:
        raise Invalido(f"Estado desconocido: {estado}")
    filas, total = vistas.listar_backups(
        session,
        (p - 1) * FILAS,
        FILAS,
        tipo=tipo or None,
        estado=estado or None,
        fechas=rango_de_textos(desde, hasta, request.app.state.settings.tz),
        incluir_eliminados=eliminados,
    )
    filtros = {"tipo": tipo, "estado": estado, "desde": desde, "hasta": hasta, "eliminados": eliminados}
    return pagina(
        request,
        "backups.html",
        {
            "titulo": "Backups",
            "filas": filas,
            "columnas": vistas.COLUMNAS_BACKUP,
            "filtros": filtros,
            "query": urlencode({k: v for k, v in filtros.items() if v}),
            "paginas": _paginas(total, p),
            "tipos_manuales": vistas.TIPOS_MANUALES,
            "tipos": vistas.TIPOS_BACKUP,
            "estados": vistas.ESTADOS_BACKUP,
        },
    )


@router.post("/backups/ejecutar", dependencies=[CsrfDep])
def ejecutar_backup(
    request: Request, user: AdminConsola, tipo: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    if tipo not in vistas.TIPOS_MANUALES:
        raise Invalido(f"Tipo de backup no permitido: {tipo or '(vacío)'}")
    try:
        id_backup = puertos.iniciar_backup(request, tipo, user)
    except DomainError as exc:
        return redirigir(request, f"{RAIZ}/backups", exc.mensaje, "error")
    return redirigir(request, f"{RAIZ}/backups/{id_backup}", f"Backup {tipo} n.º {id_backup} en marcha")


@router.get("/backups/{id_backup}")
def backup(id_backup: int, request: Request, session: SessionDep, _: AdminConsola) -> HTMLResponse:
    row = puertos.obtener_backup(request, session, id_backup)
    return pagina(
        request,
        "backup.html",
        {
            "titulo": f"Backup n.º {row.id_backup}",
            "b": row,
            "columnas": vistas.COLUMNAS_BACKUP,
            "manifiesto": puertos.manifiesto(request, row),
            "comando": puertos.comando_restaurar(row),
            "en_curso": row.estado == "EN_PROCESO",
        },
    )


@router.get("/backups/{id_backup}/descargar")
def descargar(id_backup: int, request: Request, user: AdminConsola) -> Response:
    return puertos.descargar(request, id_backup, user)


@router.post("/backups/{id_backup}/email", dependencies=[CsrfDep])
def enviar_email(
    id_backup: int,
    request: Request,
    user: AdminConsola,
    email_destino: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    destino = f"{RAIZ}/backups/{id_backup}"
    try:
        envio = puertos.enviar_email(request, id_backup, email_destino.strip(), user)
    except DomainError as exc:
        return redirigir(request, destino, exc.mensaje, "error")
    return redirigir(request, destino, f"Backup enviado a {envio['email_destino']} (MD5 {envio['hash_md5']})")


@router.post("/backups/{id_backup}/verificar", dependencies=[CsrfDep])
def verificar(id_backup: int, request: Request, _: AdminConsola) -> Response:
    # Sesión propia y breve: leer el archivo entero puede tardar y no debe retener una conexión.
    with request.app.state.session_factory() as session:
        puertos.obtener_backup(request, session, id_backup)  # 404 si no existe
    destino = f"{RAIZ}/backups/{id_backup}"
    try:
        resumen = puertos.verificar(request, id_backup)
    except DomainError as exc:
        return redirigir(request, destino, exc.mensaje, "error")
    return redirigir(request, destino, resumen)


# ------------------------------------------------------------------ tareas


@router.get("/tareas")
def tareas(request: Request, _: AdminConsola) -> HTMLResponse:
    return pagina(request, "tareas.html", {"titulo": "Tareas", "jobs": puertos.estado_jobs(request)})


@router.post("/tareas/{job_id}/ejecutar", dependencies=[CsrfDep])
def ejecutar_tarea(job_id: str, request: Request, user: AdminConsola) -> Response:
    try:
        corrida = puertos.ejecutar_job(request, job_id[:50], user)
    except DomainError as exc:
        return redirigir(request, f"{RAIZ}/tareas", exc.mensaje, "error")
    texto = f"{corrida.job_id}: {corrida.estado}" + (f" — {corrida.mensaje}" if corrida.mensaje else "")
    return redirigir(request, f"{RAIZ}/tareas", texto, "error" if corrida.estado == "ERROR" else "ok")


# ------------------------------------------------------------------ notificaciones


@router.get("/notificaciones")
def notificaciones_pagina(
    request: Request,
    session: SessionDep,
    _: UsuarioConsola,
    semaforo: Annotated[str, Query(max_length=10)] = "",
    tipo: Annotated[str, Query(max_length=30)] = "",
    leida: Annotated[str, Query(max_length=2)] = "",
    p: NumPagina = 1,
) -> HTMLResponse:
    if semaforo and semaforo not in vistas.SEMAFOROS:
        raise Invalido(f"Semáforo desconocido: {semaforo}")
    if leida not in ("", "si", "no"):
        raise Invalido("leída debe ser 'si' o 'no'")
    datos = notificaciones.list_notifications(
        session,
        _de_la_pagina(p),
        leida={"si": True, "no": False}.get(leida),
        tipo=tipo.strip().upper() or None,
        semaforo=semaforo or None,
    )
    filtros = {"semaforo": semaforo, "tipo": tipo, "leida": leida}
    return pagina(
        request,
        "notificaciones.html",
        {
            "titulo": "Notificaciones",
            "datos": datos,
            "filtros": filtros,
            "query": urlencode({k: v for k, v in filtros.items() if v}),
            "paginas": _paginas(datos["total"], p),
            "semaforos": vistas.SEMAFOROS,
        },
    )


def _volver(request: Request, por_defecto: str) -> str:
    """Vuelve a la página de la que vino el formulario (solo rutas de la consola)."""
    previa = request.headers.get("referer", "")
    base = str(request.base_url).rstrip("/") + RAIZ + "/"
    return previa[len(str(request.base_url).rstrip("/")) :] if previa.startswith(base) else por_defecto


@router.post("/notificaciones/{id_notificacion}/leida", dependencies=[CsrfDep])
def marcar_leida(id_notificacion: int, request: Request, session: SessionDep, _: UsuarioConsola) -> Response:
    n = notificaciones.mark_read(session, id_notificacion)
    return redirigir(request, _volver(request, f"{RAIZ}/notificaciones"), f"Notificación «{n.titulo}» leída")


@router.post("/notificaciones/leer-todas", dependencies=[CsrfDep])
def marcar_todas(request: Request, session: SessionDep, _: UsuarioConsola) -> Response:
    cuantas = notificaciones.mark_all_read(session)
    return redirigir(
        request,
        f"{RAIZ}/notificaciones",
        cantidad(cuantas, "notificación marcada como leída", "notificaciones marcadas como leídas"),
    )


# ------------------------------------------------------------------ inventario


@router.get("/inventario")
def inventario(request: Request, session: SessionDep, _: UsuarioConsola) -> HTMLResponse:
    settings = request.app.state.settings
    datos = vistas.inventario(session, _ahora(request).date(), settings.ALERTAS_DIAS_VENCIMIENTO)
    return pagina(request, "inventario.html", {"titulo": "Inventario", **datos})


# ------------------------------------------------------------------ usuarios


@router.get("/usuarios")
def usuarios_pagina(request: Request, session: SessionDep, _: AdminConsola, p: NumPagina = 1) -> HTMLResponse:
    datos = usuarios.list_users(session, _de_la_pagina(p))
    filas, total = datos["items"], datos["total"]
    return pagina(
        request,
        "usuarios.html",
        {"titulo": "Usuarios", "filas": filas, "paginas": _paginas(total, p), "ahora": _ahora(request)},
    )


def _datos(modelo: type[Any], **campos: Any) -> Any:
    """Valida el formulario con el mismo esquema que la API; los errores, en español."""
    from pydantic import ValidationError

    try:
        return modelo.model_validate(campos)
    except ValidationError as exc:
        errores = [traducir({**e, "loc": ("body", *e["loc"])}) for e in exc.errors(include_url=False)]
        raise Invalido("Datos inválidos: " + "; ".join(errores)) from None


@router.post("/usuarios", dependencies=[CsrfDep])
def crear_usuario(
    request: Request,
    session: SessionDep,
    _: AdminConsola,
    nombre_usuario: Annotated[str, Form(max_length=100)] = "",
    nombre_completo: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    rol: Annotated[str, Form(max_length=20)] = "OPERADOR",
) -> Response:
    destino = f"{RAIZ}/usuarios"
    try:
        datos = _datos(
            UsuarioCrear,
            nombre_usuario=nombre_usuario.strip(),
            nombre_completo=nombre_completo.strip(),
            email=email.strip() or None,
            password=password,
            rol=rol,
        )
        nuevo = usuarios.create_user(session, datos)
    except DomainError as exc:
        return redirigir(request, destino, exc.mensaje, "error")
    return redirigir(request, destino, f"Usuario {nuevo.nombre_usuario} ({nuevo.rol}) creado")


def _actualizar(
    request: Request, session: SessionDep, id_usuario: int, texto: str, **campos: Any
) -> Response:
    destino = f"{RAIZ}/usuarios"
    try:
        user = usuarios.update_user(session, id_usuario, _datos(UsuarioActualizar, **campos))
    except DomainError as exc:
        return redirigir(request, destino, exc.mensaje, "error")
    return redirigir(request, destino, texto.format(u=user.nombre_usuario))


@router.post("/usuarios/{id_usuario}/desactivar", dependencies=[CsrfDep])
def desactivar(id_usuario: int, request: Request, session: SessionDep, _: AdminConsola) -> Response:
    return _actualizar(request, session, id_usuario, "Usuario {u} desactivado", activo=False)


@router.post("/usuarios/{id_usuario}/activar", dependencies=[CsrfDep])
def activar(id_usuario: int, request: Request, session: SessionDep, _: AdminConsola) -> Response:
    return _actualizar(request, session, id_usuario, "Usuario {u} activado", activo=True)


@router.post("/usuarios/{id_usuario}/password", dependencies=[CsrfDep])
def cambiar_password(
    id_usuario: int,
    request: Request,
    session: SessionDep,
    _: AdminConsola,
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    return _actualizar(
        request, session, id_usuario, "Contraseña de {u} cambiada (y desbloqueado)", password=password
    )


# ------------------------------------------------------------------ errores


def _es_consola(request: Request) -> bool:
    return request.url.path == RAIZ or request.url.path.startswith(RAIZ + "/")


def _pagina_error(request: Request, status: int, mensaje: str) -> HTMLResponse:
    return pagina(request, "error.html", {"titulo": "Error", "status": status, "mensaje": mensaje}, status)


Manejador = Callable[[Request, Any], Awaitable[Response]]
_BASE_CAIDA = "Base de datos no disponible; intente más tarde"


def _error_de_base(exc: DBAPIError) -> tuple[int, str]:
    if exc.connection_invalidated:
        return 503, _BASE_CAIDA
    log.exception("Error de base de datos no previsto en la consola", exc_info=exc)
    return 500, "Error interno de base de datos; quedó registrado en error.log"


class TiempoServidor:
    """`Server-Timing: app;dur=MS` en cada respuesta de la consola: el tiempo que la página pasó
    en el servidor (lo que mide bench/, sin la red ni el cliente)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(RAIZ):
            await self.app(scope, receive, send)
            return
        inicio = time_ns()

        async def enviar(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time_ns() - inicio) / 1e6
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={ms:.1f}".encode()),
                ]
            await send(message)

        await self.app(scope, receive, enviar)


def instalar(app: FastAPI) -> None:
    """Monta la consola: rutas, estáticos y errores como páginas HTML (solo bajo /consola; la
    API sigue respondiendo JSON con los manejadores de `errors.install_handlers`)."""
    app.add_middleware(TiempoServidor)
    app.include_router(router)
    app.mount(f"{RAIZ}/estaticos", StaticFiles(directory=str(_AQUI / "estaticos")), name="consola_estaticos")

    async def sin_sesion(request: Request, exc: Exception) -> Response:
        motivo = exc.motivo if isinstance(exc, sesion.SinSesion) else None
        if request.method == "GET" and not motivo:
            return RedirectResponse(f"{RAIZ}/entrar", status_code=303)
        return redirigir(request, f"{RAIZ}/entrar", motivo or "Entre para continuar", "error")

    app.add_exception_handler(sesion.SinSesion, sin_sesion)

    def envolver(tipo: type[Exception], texto: Callable[[Any], tuple[int, str]]) -> None:
        anterior: Manejador | None = app.exception_handlers.get(tipo)  # type: ignore[assignment]  # Starlette los tipa como Callable genérico

        async def manejador(request: Request, exc: Any) -> Response:
            if _es_consola(request):
                status, mensaje = texto(exc)
                return _pagina_error(request, status, mensaje)
            assert anterior is not None
            return await anterior(request, exc)

        app.add_exception_handler(tipo, manejador)

    envolver(DomainError, lambda e: (e.status, e.mensaje))
    # Base caída o error de base: la misma decisión (503/500) que la API, en una página.
    envolver(OperationalError, lambda e: (503, _BASE_CAIDA))
    envolver(DBAPIError, _error_de_base)
    envolver(
        RequestValidationError,
        lambda e: (422, "Datos inválidos: " + "; ".join(traducir(x) for x in e.errors())),
    )
    envolver(
        StarletteHTTPException,
        lambda e: (
            e.status_code,
            {404: "Página no encontrada", 405: "Método no permitido"}.get(e.status_code, str(e.detail)),
        ),
    )
