"""La consola como la ve el operador: un error inesperado es una línea que dice qué falló y qué
revisar (la traza va a `error.log`), y las preguntas se contestan en español (s/sí/n/no)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import click
import typer

log = logging.getLogger("inventario.consola")

SI = ("s", "si", "sí", "y", "yes")
NO = ("n", "no")


def confirmar(pregunta: str, *, abortar: bool = True) -> bool:
    """`[s/N]`: acepta s, sí, si, n, no (y también y/yes); vacío o fin de la entrada es "no".
    Con `abortar`, un "no" termina la orden con código 1 y un aviso."""
    while True:
        try:
            respuesta = click.prompt(f"{pregunta} [s/N]", default="", show_default=False, prompt_suffix=" ")
        except click.Abort:
            respuesta = ""
            click.echo("")
        respuesta = respuesta.strip().lower()
        if respuesta in SI:
            return True
        if respuesta in (*NO, ""):
            if abortar:
                typer.secho("Cancelado: no se cambió nada.", fg=typer.colors.YELLOW, err=True)
                raise typer.Exit(1)
            return False
        typer.echo("Responda s (sí) o n (no).", err=True)


def _settings_para_log() -> object | None:
    from inventario.config import load_settings

    try:
        return load_settings()
    except Exception:
        return None


def ejecutar(app: Callable[[], object]) -> None:
    """Corre la consola. Un error no previsto (la base caída, un disco lleno...) no muestra una
    traza de cientos de líneas: una línea con qué falló y qué revisar, código 1, y la traza
    completa en `error.log`."""
    try:
        app()
    except Exception as exc:
        from inventario.arranque import describir_fallo
        from inventario.config import Settings
        from inventario.logging_setup import setup_logging

        settings = _settings_para_log()
        escrito = False
        if isinstance(settings, Settings):
            try:
                if not logging.getLogger().handlers:
                    setup_logging(settings.logs_dir, settings.LOG_LEVEL, settings.ZONA_HORARIA)
                log.error("Orden fallida: %s", " ".join(sys.argv[1:]), exc_info=exc)
                escrito = True
            except OSError:
                pass
        linea = describir_fallo(exc, settings if isinstance(settings, Settings) else None)
        if not escrito:
            linea += " (no se pudo escribir error.log)"
        typer.secho(f"Error: {linea}", fg=typer.colors.RED, err=True)
        sys.exit(1)
