"""`inventario backup clave ...` y `inventario backup remoto ...`: copias fuera del sitio desde la consola."""

from __future__ import annotations

from pathlib import Path

import typer

clave_app = typer.Typer(help="Claves age para cifrar las copias fuera del sitio.", no_args_is_help=True)


@clave_app.command("generar")
def generar(
    salida: str = typer.Option(
        ..., "--salida", help="Archivo donde guardar la clave privada (se crea con permisos 0600)"
    ),
) -> None:
    """Crea una identidad age y muestra la clave pública para BACKUP_CIFRADO_DESTINATARIOS."""
    from inventario.modules.remoto.cifrado import generate_identity

    try:
        public = generate_identity(Path(salida))
    except FileExistsError:
        typer.secho(
            f"{salida} ya existe: no se sobrescribe una clave (sin ella no se abren las copias).",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.secho(f"No se pudo crear {salida}: {exc.strerror or exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(public)
    typer.secho(
        f"Clave privada guardada en {salida} (permisos 0600). Configure en el servidor:\n"
        f"  BACKUP_CIFRADO_DESTINATARIOS={public}\n"
        "Guarde la clave privada FUERA del servidor (impresa, en un gestor de contraseñas o en un USB en "
        "un cajón): sin ella las copias cifradas no se pueden recuperar.",
        err=True,
    )
