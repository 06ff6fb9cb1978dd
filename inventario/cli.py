"""La consola `inventario`: todo lo que un operador hace cuando la web no está."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from inventario import consola_textos
from inventario.cli_support import fail, runtime_context, settings_or_exit
from inventario.errors import cantidad
from inventario.modules.backup.cli import app as backup_app
from inventario.modules.envios.cli import app as notificaciones_app
from inventario.modules.planificador.cli import alertas_app, jobs_app, logs_app, scheduler
from inventario.runtime import Runtime

if TYPE_CHECKING:
    from inventario.config import Settings

consola_textos.instalar()

app = typer.Typer(
    help="Inventario: servicio, base de datos, usuarios, backups y mantenimiento.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Base de datos y migraciones.", no_args_is_help=True)
usuario_app = typer.Typer(help="Usuarios.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(usuario_app, name="usuario")


@app.command()
def serve(
    host: str = typer.Option(None, help="Dirección (por defecto HOST)"),
    port: int = typer.Option(None, help="Puerto (por defecto PORT)"),
    workers: int = typer.Option(
        None, "--workers", min=1, max=64, help="Procesos que atienden HTTP (por defecto WORKERS, 1)"
    ),
    sin_scheduler: bool = typer.Option(False, "--sin-scheduler", help="No arrancar el planificador"),
) -> None:
    """Arranca el servicio HTTP (con PostgreSQL embebido si DATABASE_URL no está definida)."""
    import signal

    import uvicorn

    from inventario.arranque import ArranqueError, aviso_inicio, describir_fallo, reservar_puerto
    from inventario.logging_setup import setup_logging
    from inventario.main import create_app
    from inventario.request_limits import MAX_HEAD_BYTES

    settings = settings_or_exit()
    host, port = host or settings.HOST, port or settings.PORT
    workers = workers or settings.WORKERS
    try:
        sock = reservar_puerto(host, port)
        # Antes que uvicorn: sin archivos de log, su traza de arranque iría a la consola.
        setup_logging(
            settings.logs_dir,
            settings.LOG_LEVEL,
            settings.ZONA_HORARIA,
            "principal" if workers > 1 else "unico",
        )
    except (ArranqueError, OSError) as exc:
        raise fail(f"No se pudo arrancar: {describir_fallo(exc, None)}", 3) from None

    def listo(runtime: Runtime) -> None:
        typer.echo(aviso_inicio(runtime, host, port, not sin_scheduler, workers))

    options: dict[str, Any] = {  # las de uvicorn.Config, comunes a los dos modos
        "host": host,
        "port": port,
        "log_config": None,
        # Línea de petición + cabeceras: más allá, uvicorn responde 400 sin pasar por la aplicación.
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        # X-Forwarded-For solo de un proxy declarado: si no, cualquier usuario local que se
        # conecte desde 127.0.0.1 elegiría la dirección con la que el freno de login lo cuenta.
        "proxy_headers": bool(settings.PROXY_CONFIABLE),
        "forwarded_allow_ips": settings.PROXY_CONFIABLE or "",
    }
    if workers > 1:
        _serve_workers(settings, sock, workers, options, not sin_scheduler, listo)
        return
    application = create_app(settings, with_scheduler=not sin_scheduler, with_dispatcher=True, on_ready=listo)
    server = uvicorn.Server(uvicorn.Config(application, **options))
    # uvicorn reenvía la señal que lo detuvo al terminar su cierre ordenado; con estos manejadores
    # esa señal no mata al proceso y la salida es 0 (lo que systemd espera de una parada limpia).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        pass  # uvicorn sale así si el arranque falló: el motivo se muestra abajo
    if not server.started:
        motivo = getattr(application.state, "fallo_arranque", None) or (
            f"revise {settings.logs_dir / 'error.log'}"
        )
        raise fail(f"No se pudo arrancar: {motivo}", 3)
    typer.echo("Inventario detenido.")


def _serve_workers(
    settings: Settings,
    sock: socket.socket,
    workers: int,
    options: dict[str, Any],
    with_scheduler: bool,
    listo: Callable[[Runtime], None],
) -> None:
    """`serve --workers N` (N > 1): ver `inventario/supervisor.py`."""
    import uvicorn

    from inventario.arranque import ArranqueError, describir_fallo, puertos_por_worker
    from inventario.supervisor import serve_workers

    try:
        sockets = puertos_por_worker(sock, workers)
    except ArranqueError as exc:
        raise fail(f"No se pudo arrancar: {exc}", 3) from None

    config = uvicorn.Config(
        "inventario.supervisor:worker_app",
        factory=True,
        workers=workers,
        # Un worker que no responde en este tiempo se da por colgado y se reemplaza (con SIGKILL): con
        # la CPU saturada, los 5 s de uvicorn matarían a un worker lento a mitad de un backup.
        timeout_worker_healthcheck=60,
        **options,
    )
    try:
        started = serve_workers(settings, config, sockets, with_scheduler=with_scheduler, on_ready=listo)
    except Exception as exc:
        raise fail(f"No se pudo arrancar: {describir_fallo(exc, settings)}", 3) from None
    if not started:
        raise fail(f"No se pudo arrancar un worker: revise {settings.logs_dir / 'error.log'}", 3)
    typer.echo("Inventario detenido.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Aplica las migraciones pendientes."""
    from inventario import migrations

    with runtime_context(migrate=False) as runtime:
        before = migrations.current_revision(runtime.engine)
        migrations.upgrade(runtime.engine)
        after = migrations.current_revision(runtime.engine)
    typer.echo(f"Base de datos en la revisión {after} (antes: {before or 'vacía'}).")


def _leer_password(nueva: bool = True) -> str:
    """Con una terminal, dos veces sin eco; sin terminal (un script), una línea de la entrada
    estándar: la contraseña nunca va en la línea de órdenes."""
    if not sys.stdin.isatty():
        linea = sys.stdin.readline().rstrip("\r\n")
        if not linea:
            raise fail("Falta la contraseña: escríbala en la entrada estándar (una línea).", 2)
        return linea
    etiqueta = "Contraseña nueva" if nueva else "Contraseña"
    while True:
        primera = typer.prompt(etiqueta, hide_input=True)
        if typer.prompt("Repítala", hide_input=True) == primera:
            return str(primera)
        typer.echo("No coinciden; otra vez.", err=True)


@usuario_app.command("crear")
def usuario_crear(
    nombre_usuario: str = typer.Argument(..., help="Nombre de usuario"),
    admin: bool = typer.Option(False, "--admin", help="Rol ADMIN (por defecto OPERADOR)"),
    nombre_completo: str = typer.Option("", help="Nombre completo"),
    email: str = typer.Option(None, help="Correo"),
) -> None:
    """Crea un usuario. La contraseña se pide dos veces sin eco; sin terminal, una línea de stdin."""
    from pydantic import ValidationError

    from inventario.errors import DomainError
    from inventario.modules.usuarios.schemas import UsuarioCrear
    from inventario.modules.usuarios.service import create_user

    try:
        data = UsuarioCrear(
            nombre_usuario=nombre_usuario,
            nombre_completo=nombre_completo,
            email=email,
            password=_leer_password(nueva=False),
            rol="ADMIN" if admin else "OPERADOR",
        )
    except ValidationError as exc:
        from inventario.errors import traducir

        raise fail(
            "Datos inválidos: "
            + "; ".join(traducir({**e, "loc": ("body", *e["loc"])}) for e in exc.errors()),
            2,
        ) from None
    with runtime_context() as runtime, runtime.session_factory() as session:
        try:
            user = create_user(session, data)
        except DomainError as exc:
            raise fail(exc.mensaje) from None
    typer.echo(f"Usuario '{user.nombre_usuario}' creado con rol {user.rol} (id {user.id_usuario}).")


@usuario_app.command("password")
def usuario_password(nombre_usuario: str = typer.Argument(..., help="Nombre de usuario")) -> None:
    """Cambia la contraseña de un usuario (y lo desbloquea). Sin terminal, la lee de la entrada estándar."""
    from pydantic import ValidationError

    from inventario.errors import DomainError, traducir
    from inventario.modules.usuarios.schemas import UsuarioActualizar
    from inventario.modules.usuarios.service import get_user_by_name, update_user

    with runtime_context() as runtime, runtime.session_factory() as session:
        try:
            user = get_user_by_name(session, nombre_usuario)
        except DomainError as exc:
            raise fail(exc.mensaje) from None
        try:
            data = UsuarioActualizar(password=_leer_password())
        except ValidationError as exc:
            raise fail("Contraseña inválida: " + "; ".join(traducir(e) for e in exc.errors()), 2) from None
        update_user(session, user.id_usuario, data)
    logging.getLogger("inventario.sesiones").info(
        "PASSWORD CAMBIADA usuario=%s desde=consola", nombre_usuario
    )
    typer.echo(f"Contraseña de '{nombre_usuario}' cambiada; intentos fallidos y bloqueo en cero.")


@usuario_app.command("desbloquear")
def usuario_desbloquear(
    nombre_usuario: str = typer.Argument(..., help="Nombre de usuario"),
    activar: bool = typer.Option(False, "--activar", help="Si está desactivado, activarlo también"),
) -> None:
    """Quita el bloqueo por intentos fallidos (y con --activar, reactiva al usuario)."""
    from inventario.errors import DomainError
    from inventario.modules.usuarios.service import get_user_by_name, unlock

    with runtime_context() as runtime, runtime.session_factory() as session:
        try:
            user = get_user_by_name(session, nombre_usuario)
        except DomainError as exc:
            raise fail(exc.mensaje) from None
        estaba = (
            f"bloqueado hasta {user.bloqueado_hasta:%Y-%m-%d %H:%M}"  # en ZONA_HORARIA (la sesión)
            if user.bloqueado_hasta
            else "sin bloqueo"
        ) + f", {cantidad(user.intentos_fallidos, 'intento fallido', 'intentos fallidos')}"
        unlock(session, user.id_usuario)
        if activar and not user.activo:
            user.activo = True
            session.commit()
        activo = user.activo
    logging.getLogger("inventario.sesiones").info("DESBLOQUEADO usuario=%s desde=consola", nombre_usuario)
    typer.echo(f"Usuario '{nombre_usuario}' desbloqueado (estaba {estaba}).")
    typer.echo(
        "La pausa por intentos fallidos desde un equipo la lleva el servicio en memoria (cada worker la "
        "suya): termina sola (LOGIN_BLOQUEO_MINUTOS) o al reiniciarlo."
    )
    if not activo:
        typer.secho(
            "Atención: el usuario está desactivado y no puede entrar; use --activar para reactivarlo.",
            fg=typer.colors.YELLOW,
        )


@db_app.command("url")
def db_url() -> None:
    """La URL para psql (o cualquier cliente) de la base del servicio, sin contraseña.

    Con el PostgreSQL embebido es su socket (sin TCP); vale mientras el servicio esté en marcha.
    """
    from inventario.arranque import url_sin_clave

    with runtime_context(migrate=False) as runtime:
        server = runtime.server
        typer.echo(url_sin_clave(server.url))
    if server.embedded:
        typer.echo(
            "(socket del PostgreSQL embebido: la URL sirve mientras corra `inventario serve`; "
            "sin el servicio, use `inventario db psql`)",
            err=True,
        )
    elif server.url.password:
        typer.echo("(la contraseña no se muestra: psql la pide, o use PGPASSWORD o ~/.pgpass)", err=True)


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Abre psql en la base del servicio (arranca el PostgreSQL embebido si hace falta).

    Lo que siga a `--` va a psql: `inventario db psql -- -c "SELECT count(*) FROM productos"`.
    """
    import subprocess

    with runtime_context(migrate=False) as runtime:
        conninfo, env = runtime.server.libpq()
        psql = runtime.pg_tools().path("psql")
        codigo = subprocess.call([psql, "--dbname", conninfo, *ctx.args], env=env)
    raise typer.Exit(codigo)


app.add_typer(backup_app, name="backup")
app.add_typer(jobs_app, name="jobs")
app.add_typer(logs_app, name="logs")
app.add_typer(alertas_app, name="alertas")
app.add_typer(notificaciones_app, name="notificaciones")
app.command("scheduler")(scheduler)


@app.command()
def demo(
    productos: int = typer.Option(1000, "--productos", help="Productos a crear"),
    lotes_por_producto: int = typer.Option(3, "--lotes-por-producto", help="Lotes de cada producto"),
    movimientos: int = typer.Option(
        10000, "--movimientos", help="Movimientos en total (el primero de cada lote es su ingreso)"
    ),
    semilla: int = typer.Option(None, "--semilla", help="Semilla: la misma semilla genera los mismos datos"),
) -> None:
    """Agrega datos de demostración realistas (farmacia y tienda) para pruebas de rendimiento."""
    import time

    from inventario.demo import DemoError, generate, validate
    from inventario.runtime import announce_first_admin

    try:
        validate(productos, lotes_por_producto, movimientos)
    except DemoError as exc:
        raise fail(str(exc), 2) from None

    def show(fase: str, filas: int, segundos: float) -> None:
        typer.echo(f"  {fase:<20} {filas:>12,} filas {segundos:8.2f} s".replace(",", " "))

    with runtime_context() as runtime:
        announce_first_admin(runtime)  # los movimientos los firma el primer ADMIN
        start = time.perf_counter()
        counts = generate(runtime.engine, productos, lotes_por_producto, movimientos, semilla, progress=show)
    total = sum(counts[k] for k in ("productos", "lotes", "movimientos", "notificaciones"))
    typer.echo(
        f"Corrida DEMO{counts['corrida']:03d} (semilla {counts['semilla']}): "
        f"{total:,} filas en {time.perf_counter() - start:.1f} s.".replace(",", " ")
    )


def main() -> None:
    """El punto de entrada `inventario`: sin trazas en la consola (ver `consola.ejecutar`)."""
    from inventario.consola import ejecutar

    ejecutar(app)


if __name__ == "__main__":  # pragma: no cover
    main()
