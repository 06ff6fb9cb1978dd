"""`inventario backup ...`: lo que un operador hace con los backups, también sin la web."""

from __future__ import annotations

import os

import typer

from inventario.errors import DomainError

app = typer.Typer(help="Backups: ejecutar, listar, limpiar, verificar y restaurar.", no_args_is_help=True)


def _cli():  # importación tardía: evita el ciclo con inventario.cli
    from inventario import cli

    return cli


@app.command("ejecutar")
def ejecutar(
    tipo: str = typer.Option(
        "AUTO", "--tipo", help="COMPLETO, DIFERENCIAL o AUTO (completo el día BACKUP_FULL_DAY)"
    ),
    usuario: str = typer.Option("MANUAL", "--usuario", help="Quién lo ejecuta (columna ejecutado_por)"),
) -> None:
    """Ejecuta un backup ahora."""
    from inventario.modules.backup.service import BackupService

    tipo = tipo.upper()
    if tipo not in ("COMPLETO", "DIFERENCIAL", "AUTO"):
        raise _cli().fail("--tipo debe ser COMPLETO, DIFERENCIAL o AUTO", 2)
    with _cli().runtime_context() as runtime:
        service = BackupService(runtime, notifier=default_notifier())
        service.recover()
        try:
            row = service.run(tipo, usuario)  # type: ignore[arg-type]
        except DomainError as exc:
            raise _cli().fail(exc.mensaje) from None
        offsite = _wait_offsite(runtime, row.id_backup)
    typer.echo(
        f"Backup {row.tipo} {row.id_backup} completado: {row.nombre_archivo} "
        f"({row.tamanio_legible}, {row.registros_totales} registros, {row.duracion_segundos:.2f} s, MD5 {row.hash_md5})"
    )
    if row.nota:
        typer.secho(f"Nota: {row.nota}", fg=typer.colors.YELLOW)
    if offsite:
        typer.secho(offsite[0], fg=typer.colors.GREEN if offsite[1] else typer.colors.RED)


def _wait_offsite(runtime, id_backup: int) -> tuple[str, bool] | None:  # type: ignore[no-untyped-def]
    """La consola termina al acabar: espera a la copia fuera del sitio que el backup dejó en marcha
    (un intento; si falla, queda en ERROR para la siguiente corrida)."""
    from inventario.modules.remoto.model import CopiaRemota
    from inventario.modules.remoto.service import wait_background

    if not runtime.settings.BACKUP_REMOTO:
        return None
    typer.echo(f"Copiando el backup {id_backup} fuera del sitio ...")
    wait_background()
    with runtime.session_factory() as session:
        state = session.get(CopiaRemota, id_backup)
    if state is not None and state.estado == "COPIADO":
        return f"Copiado fuera del sitio y verificado: {state.objeto} (MD5 {state.hash_remoto})", True
    error = state.mensaje_error if state is not None else "sin registro"
    return f"No se pudo copiar fuera del sitio (el backup local está bien; se reintentará): {error}", False


@app.command("listar")
def listar(todos: bool = typer.Option(False, "--todos", help="Incluir los eliminados")) -> None:
    """Lista los backups del catálogo, el más reciente primero."""
    from sqlalchemy import select

    from inventario.modules.backup.model import HistorialBackup

    with _cli().runtime_context() as runtime, runtime.session_factory() as session:
        query = select(HistorialBackup).order_by(HistorialBackup.id_backup.desc())
        if not todos:
            query = query.where(HistorialBackup.eliminado.is_not(True))
        rows = list(session.scalars(query))
    if not rows:
        typer.echo("No hay backups.")
        return
    typer.echo(
        f"{'ID':>5}  {'TIPO':<11}  {'ESTADO':<10}  {'TAMAÑO':>10}  {'BASE':>5}  {'FECHA':<19}  ARCHIVO"
    )
    for r in rows:
        fecha = (
            r.fecha_creacion.astimezone(runtime.settings.tz).strftime("%Y-%m-%d %H:%M:%S")
            if r.fecha_creacion
            else ""
        )
        estado = "ELIMINADO" if r.eliminado else (r.estado or "")
        typer.echo(
            f"{r.id_backup:>5}  {r.tipo:<11}  {estado:<10}  {r.tamanio_legible or '-':>10}  "
            f"{r.id_backup_base or '-':>5}  {fecha:<19}  {r.nombre_archivo}"
        )


@app.command("limpiar")
def limpiar() -> None:
    """Aplica la retención (BACKUP_RETENTION_DAYS) ahora."""
    from inventario.archivos import human_size
    from inventario.modules.backup.service import BackupService

    with _cli().runtime_context() as runtime:
        try:
            result = BackupService(runtime, notifier=default_notifier()).cleanup()
        except DomainError as exc:
            raise _cli().fail(exc.mensaje) from None
    typer.echo(
        f"Eliminados {len(result.eliminados)} backups ({human_size(result.bytes_liberados)} liberados); "
        f"temporales borrados: {len(result.temporales_borrados)}."
    )
    for row in result.eliminados:
        typer.echo(f"  - {row.id_backup} {row.nombre_archivo}")
    if result.conservados_por_dependencia:
        typer.echo(
            "Conservados aunque son viejos, porque un diferencial vigente depende de ellos: "
            + ", ".join(str(i) for i in result.conservados_por_dependencia)
        )


@app.command("verificar")
def verificar(
    id_o_archivo: str = typer.Argument(None, help="Id del backup o nombre/ruta del archivo"),
    todos: bool = typer.Option(False, "--todos", help="Verificar todos los backups del directorio"),
    restaurar_prueba: bool = typer.Option(
        False, "--restaurar-prueba", help="Además restaurar en una base temporal y comparar filas por tabla"
    ),
) -> None:
    """Comprueba MD5, gzip y que el completo base de cada diferencial esté presente."""
    from inventario.modules.backup import restore
    from inventario.modules.backup.files import iter_manifests

    if bool(id_o_archivo) == todos:
        raise _cli().fail("Indique un id o archivo, o bien --todos", 2)
    settings = _cli().settings_or_exit()
    directory = settings.backup_dir
    keys = [str(m.id_backup) for _, m in iter_manifests(directory)] if todos else [id_o_archivo]
    if not keys:
        raise _cli().fail(f"No hay backups en {directory}")
    failures = 0
    runtime_cm = _cli().runtime_context(migrate=False) if restaurar_prueba else None
    runtime = runtime_cm.__enter__() if runtime_cm else None
    try:
        for key in keys:
            try:
                chain = restore.resolve_chain(directory, key)
                for link in chain:
                    restore.verify_link(link)
                detail = ""
                if runtime is not None:
                    detail = " — " + _restore_test(runtime, chain)
                last = chain[-1]
                typer.secho(
                    f"OK     {last.manifest.id_backup:>5} {last.path.name}{detail}", fg=typer.colors.GREEN
                )
            except restore.RestoreError as exc:
                failures += 1
                typer.secho(f"ERROR  {key}: {exc}", fg=typer.colors.RED)
    finally:
        if runtime_cm:
            runtime_cm.__exit__(None, None, None)
    if failures:
        raise typer.Exit(1)


def _restore_test(runtime, chain) -> str:  # type: ignore[no-untyped-def]
    from inventario.modules.backup import restore

    scratch = f"inventario_verificacion_{os.getpid()}"
    with restore.connect(runtime.server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    target = runtime.server.with_database(scratch)
    try:
        restore.apply_chain(chain, target, runtime.pg_tools().path("psql"))
        last = chain[-1].manifest
        actual = restore.table_counts(target, [t.nombre for t in last.tablas])
        problems = restore.compare_counts(last, actual)
        if problems:
            raise restore.RestoreError("restaurado, pero las filas no coinciden: " + "; ".join(problems))
        return f"restaurado en una base temporal: {sum(actual.values())} filas en {len(actual)} tablas, iguales al manifiesto"
    finally:
        with restore.connect(runtime.server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


@app.command("restaurar")
def restaurar(
    id_o_archivo: str = typer.Argument(
        None,
        help="Id del backup o nombre/ruta del archivo (.sql.gz); con --desde-remoto, por defecto el más reciente",
    ),
    destino: str = typer.Option(
        None, "--destino", help="URL de la base destino (por defecto la del servicio)"
    ),
    si: bool = typer.Option(False, "--si", help="No pedir confirmación para sobrescribir una base con datos"),
    desde_remoto: bool = typer.Option(
        False, "--desde-remoto", help="Bajar la cadena de BACKUP_REMOTO (recuperación desde cero)"
    ),
    identidad: str = typer.Option(
        None, "--identidad", help="Con --desde-remoto: la clave privada age (clave.txt)"
    ),
) -> None:
    """Restaura un backup (y, si es diferencial, su completo antes) en una sola transacción."""
    from inventario.modules.backup import restore
    from inventario.modules.backup.service import sync_catalog
    from inventario.postgres import DatabaseServer, sqlalchemy_url

    remote_found: list = []  # type: ignore[type-arg]
    if desde_remoto:
        from inventario.modules.remoto.cli import fetch_for_restore

        id_o_archivo, remote_found = fetch_for_restore(id_o_archivo, identidad)
    elif not id_o_archivo:
        raise _cli().fail("Indique el id o archivo del backup (o --desde-remoto)", 2)
    settings = _cli().settings_or_exit()
    directory = settings.backup_dir
    try:
        chain = restore.resolve_chain(directory, id_o_archivo)
        typer.echo("Verificando " + ", ".join(link.path.name for link in chain) + " ...")
        for link in chain:
            restore.verify_link(link)
    except restore.RestoreError as exc:
        raise _cli().fail(f"No se restauró nada: {exc}") from None
    with _cli().runtime_context(migrate=False) as runtime:
        if destino:
            try:
                target = DatabaseServer(sqlalchemy_url(destino), embedded=False)
            except Exception as exc:
                raise _cli().fail(f"--destino inválido: {exc}", 2) from None
        else:
            target = runtime.server
        try:
            empty = restore.database_is_empty(target)
            busy = restore.other_sessions(target)
        except Exception as exc:
            raise _cli().fail(
                f"No se puede conectar con la base destino: {exc.__class__.__name__}: {exc}"
            ) from None
        if busy:
            typer.secho(
                f"Atención: hay {busy} sesiones abiertas en la base destino (¿el servicio sigue en marcha?); "
                "la restauración esperará a que liberen sus bloqueos.",
                fg=typer.colors.YELLOW,
            )
        if not empty and not si:
            typer.confirm(
                f"La base destino '{target.database}' tiene datos y será REEMPLAZADA por el backup. ¿Continuar?",
                abort=True,
            )
        total = sum(link.manifest.tamanio_sin_comprimir for link in chain)
        try:
            with typer.progressbar(length=total, label="Restaurando") as bar:
                restore.apply_chain(chain, target, runtime.pg_tools().path("psql"), progress=bar.update)
        except restore.RestoreError as exc:
            raise _cli().fail(str(exc)) from None
        last = chain[-1].manifest
        actual = restore.table_counts(target, [t.nombre for t in last.tablas])
        problems = restore.compare_counts(last, actual)
        from inventario.database import make_engine, make_session_factory

        engine = make_engine(target.url)
        try:
            with make_session_factory(engine)() as session:
                synced = sync_catalog(session, directory)
                if remote_found:
                    from inventario.modules.remoto.service import record_remote_copies

                    record_remote_copies(session, remote_found, settings.BACKUP_REMOTO)
                    session.commit()
        finally:
            engine.dispose()
    if problems:
        raise _cli().fail("Restaurado, pero las filas no coinciden con el manifiesto: " + "; ".join(problems))
    typer.secho(
        f"Restaurado {last.tipo} {last.id_backup} ({last.nombre_archivo}): estado de la base al "
        f"{last.fecha_instantanea.isoformat()}, {sum(actual.values())} filas en {len(actual)} tablas. "
        f"Catálogo sincronizado con {directory} ({synced} registros actualizados).",
        fg=typer.colors.GREEN,
    )


def default_notifier():  # type: ignore[no-untyped-def]
    from inventario.modules.backup.notifications import notify

    return notify


def _register_remote() -> None:
    from inventario.modules.remoto.cli import clave_app, remoto_app

    app.add_typer(clave_app, name="clave")
    app.add_typer(remoto_app, name="remoto")


_register_remote()
