"""Lo que comparten las órdenes de la consola (`inventario ...` y los `cli.py` de cada módulo).

Módulo aparte para que ningún `cli.py` de un módulo importe de `inventario/cli.py` (que los importa
a ellos para registrarlos).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from inventario.config import ConfigError, Settings, load_settings
from inventario.logging_setup import setup_logging
from inventario.runtime import Runtime, open_runtime


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


@contextmanager
def runtime_context(migrate: bool = True) -> Iterator[Runtime]:
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
