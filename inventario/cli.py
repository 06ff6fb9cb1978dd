"""La consola `inventario`: todo lo que un operador hace cuando la web no está."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from inventario.config import ConfigError, Settings, load_settings
from inventario.runtime import Runtime, open_runtime

app = typer.Typer(
    help="Inventario: servicio, base de datos, usuarios, backups y mantenimiento.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Base de datos y migraciones.", no_args_is_help=True)
usuario_app = typer.Typer(help="Usuarios.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(usuario_app, name="usuario")


def _register_subcommands() -> None:
    from inventario.modules.backup.cli import app as backup_app
    from inventario.modules.envios.cli import app as notificaciones_app
    from inventario.modules.jobs.cli import alertas_app, jobs_app, logs_app, scheduler

    app.add_typer(backup_app, name="backup")
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(logs_app, name="logs")
    app.add_typer(alertas_app, name="alertas")
    app.add_typer(notificaciones_app, name="notificaciones")
    app.command("scheduler")(scheduler)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


@contextmanager
def runtime_context(migrate: bool = True) -> Iterator[Runtime]:
    from inventario.logging_setup import setup_logging

    settings = settings_or_exit()
    setup_logging(settings.logs_dir, settings.LOG_LEVEL, settings.ZONA_HORARIA)
    runtime = open_runtime(settings, migrate=migrate)
    try:
        yield runtime
    finally:
        runtime.close()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.command()
def serve(
    host: str = typer.Option(None, help="Dirección (por defecto HOST)"),
    port: int = typer.Option(None, help="Puerto (por defecto PORT)"),
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
    try:
        sock = reservar_puerto(host, port)
        # Antes que uvicorn: sin archivos de log, su traza de arranque iría a la consola.
        setup_logging(settings.logs_dir, settings.LOG_LEVEL, settings.ZONA_HORARIA)
    except (ArranqueError, OSError) as exc:
        raise fail(f"No se pudo arrancar: {describir_fallo(exc, None)}", 3) from None

    def listo(runtime: Runtime) -> None:
        typer.echo(aviso_inicio(runtime, host, port, not sin_scheduler))

    application = create_app(settings, with_scheduler=not sin_scheduler, with_dispatcher=True, on_ready=listo)
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            log_config=None,
            # Línea de petición + cabeceras: más allá, uvicorn responde 400 sin pasar por la aplicación.
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
    )
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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Aplica las migraciones pendientes."""
    from inventario import migrations

    with runtime_context(migrate=False) as runtime:
        before = migrations.current_revision(runtime.engine)
        migrations.upgrade(runtime.engine)
        after = migrations.current_revision(runtime.engine)
    typer.echo(f"Base de datos en la revisión {after} (antes: {before or 'vacía'}).")


@usuario_app.command("crear")
def usuario_crear(
    nombre_usuario: str = typer.Argument(..., help="Nombre de usuario"),
    admin: bool = typer.Option(False, "--admin", help="Rol ADMIN (por defecto OPERADOR)"),
    nombre_completo: str = typer.Option("", help="Nombre completo"),
    email: str = typer.Option(None, help="Correo"),
    password: str = typer.Option(
        ..., prompt="Contraseña", hide_input=True, confirmation_prompt=True, help="Contraseña"
    ),
) -> None:
    """Crea un usuario."""
    from pydantic import ValidationError

    from inventario.errors import DomainError
    from inventario.modules.usuarios.schemas import UsuarioCrear
    from inventario.modules.usuarios.service import create_user

    try:
        data = UsuarioCrear(
            nombre_usuario=nombre_usuario,
            nombre_completo=nombre_completo,
            email=email,
            password=password,
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


_register_subcommands()


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


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
