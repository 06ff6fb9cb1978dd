"""`inventario notificaciones probar`: lo mismo que POST /api/v1/notificaciones/probar."""

from __future__ import annotations

import typer

app = typer.Typer(help="Avisos por email y otros canales.", no_args_is_help=True)


@app.command()
def probar() -> None:
    """Envía un mensaje de prueba a cada canal configurado y dice qué pasó en cada uno.

    Sale con 0 si todos lo recibieron, 1 si alguno falló y 2 si no hay canales configurados."""
    import getpass

    from inventario.cli_support import fail, settings_or_exit
    from inventario.errors import Conflicto
    from inventario.logging_setup import setup_logging
    from inventario.modules.envios.service import probar as enviar_prueba

    settings = settings_or_exit()
    setup_logging(settings.logs_dir, settings.LOG_LEVEL, settings.ZONA_HORARIA)
    try:
        resultados = enviar_prueba(settings, f"la consola ({getpass.getuser()})")
    except Conflicto as exc:
        raise fail(exc.mensaje, 2) from None
    for r in resultados:
        if r["enviado"]:
            typer.secho(f"ENVIADO  {r['canal']} → {r['destino']}", fg=typer.colors.GREEN)
        else:
            typer.secho(f"ERROR    {r['canal']} → {r['destino']}: {r['detalle']}", fg=typer.colors.RED)
    fallidos = sum(1 for r in resultados if not r["enviado"])
    typer.echo(f"{len(resultados) - fallidos} de {len(resultados)} canales recibieron el mensaje de prueba.")
    if fallidos:
        raise typer.Exit(1)
