"""`inventario notificaciones probar` (lo mismo que POST /api/v1/notificaciones/probar) y
`inventario notificaciones enviar` (una vuelta del despachador, para quien no corre `serve`)."""

from __future__ import annotations

import typer

from inventario.errors import cantidad

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
    recibieron = "recibió" if len(resultados) - fallidos == 1 else "recibieron"
    typer.echo(
        f"{len(resultados) - fallidos} de {cantidad(len(resultados), 'canal', 'canales')} "
        f"{recibieron} el mensaje de prueba."
    )
    if fallidos:
        raise typer.Exit(1)


@app.command()
def enviar() -> None:
    """Una vuelta del despachador: planifica los avisos nuevos, el resumen y los pings, y entrega
    lo pendiente. `serve` lo hace solo; esto es para instalaciones sin servicio (cron).

    Sale con 0 si no quedó ningún envío en ERROR, 1 si alguno sigue fallando (se reintentará)."""
    from sqlalchemy import text

    from inventario.cli_support import runtime_context
    from inventario.modules.envios.service import ciclo

    with runtime_context() as runtime:
        r = ciclo(runtime)
        with runtime.engine.connect() as conn:
            errores = conn.execute(text("SELECT count(*) FROM envios WHERE estado = 'ERROR'")).scalar_one()
    planificadas = ", ".join(f"{n} {estado}" for estado, n in sorted(r.planificadas.items())) or "ninguna"
    typer.echo(
        f"Notificaciones nuevas: {planificadas}. Incidentes resueltos: {r.resueltos}; abiertos ahora: "
        f"{len(r.vigilancia)}. Resumen diario: {'sí' if r.resumen else 'no'}. Pings: {r.pings}. "
        f"Envíos intentados: {r.intentos}; en ERROR: {errores}."
    )
    if errores:
        raise typer.Exit(1)
