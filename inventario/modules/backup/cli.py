"""`inventario backup ...`: lo que un operador hace con los backups, también sin la web."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, tzinfo

import typer
from sqlalchemy.exc import SQLAlchemyError

from inventario.archivos import human_size
from inventario.arranque import url_sin_clave
from inventario.cli_support import fail, runtime_context, settings_or_exit
from inventario.errors import DomainError, cantidad
from inventario.modules.backup import queries, restore
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.model import TipoSolicitado
from inventario.modules.backup.notifications import notify
from inventario.modules.backup.repo import BackupRepo, Link
from inventario.modules.backup.service import BackupService
from inventario.modules.remoto.transfer import Descriptor
from inventario.postgres import DatabaseServer, describe_connection_error, sqlalchemy_url
from inventario.runtime import Runtime

app = typer.Typer(help="Backups: ejecutar, listar, limpiar, verificar y restaurar.", no_args_is_help=True)


@app.command("ejecutar")
def ejecutar(
    tipo: str = typer.Option(
        "AUTO", "--tipo", help="COMPLETO, DIFERENCIAL, INCREMENTAL o AUTO (completo el día BACKUP_FULL_DAY)"
    ),
    usuario: str = typer.Option("MANUAL", "--usuario", help="Quién lo ejecuta (columna ejecutado_por)"),
) -> None:
    """Ejecuta un backup ahora."""
    if tipo.upper() not in TipoSolicitado.__members__:
        raise fail("--tipo debe ser COMPLETO, DIFERENCIAL, INCREMENTAL o AUTO", 2)
    with runtime_context() as runtime:
        service = BackupService(runtime, notifier=notify)
        service.recover()
        try:
            row = service.run(TipoSolicitado(tipo.upper()), usuario)
        except DomainError as exc:
            raise fail(exc.mensaje) from None
        offsite = _wait_offsite(runtime, row.id_backup)
    typer.echo(
        f"Backup {row.tipo} {row.id_backup} completado: {row.nombre_archivo} "
        f"({row.tamanio_legible}, {row.registros_totales} registros, {row.duracion_segundos:.2f} s, MD5 {row.hash_md5})"
    )
    if row.nota:
        typer.secho(f"Nota: {row.nota}", fg=typer.colors.YELLOW)
    if offsite:
        typer.secho(offsite[0], fg=typer.colors.GREEN if offsite[1] else typer.colors.RED)


def _wait_offsite(runtime: Runtime, id_backup: int) -> tuple[str, bool] | None:
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
    with runtime_context() as runtime, runtime.session_factory() as session:
        # La misma consulta que GET /api/v1/backup/listar (queries.listar), sin paginar.
        rows = list(session.scalars(queries.listar(incluir_eliminados=todos)))
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
    """Aplica la retención (BACKUP_RETENTION_DAYS; incrementales ya cubiertos: BACKUP_INCREMENTAL_RETENTION_DAYS) ahora."""
    with runtime_context() as runtime:
        try:
            result = BackupService(runtime, notifier=notify).cleanup()
        except DomainError as exc:
            raise fail(exc.mensaje) from None
    typer.echo(
        f"Eliminados {len(result.eliminados)} backups ({human_size(result.bytes_liberados)} liberados); "
        f"temporales borrados: {len(result.temporales_borrados)}."
    )
    for row in result.eliminados:
        typer.echo(f"  - {row.id_backup} {row.nombre_archivo}")
    if result.conservados_por_dependencia:
        typer.echo(
            "Conservados aunque son viejos, porque un backup que se conserva depende de ellos: "
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
    # La ayuda en un solo párrafo: Typer respeta los saltos de línea de la docstring.
    """Comprueba MD5, gzip, que la cadena de cada backup (completo, diferencial, incrementales) esté entera y que archivo, manifiesto y catálogo digan lo mismo; con --todos, también cada backup COMPLETADO del catálogo cuyo archivo ya no está."""
    if bool(id_o_archivo) == todos:
        raise fail("Indique un id o archivo, o bien --todos", 2)
    repo = BackupRepo(settings_or_exit().backup_dir)
    failures = 0
    with runtime_context(migrate=False) as runtime:
        try:
            catalog = restore.load_catalog(runtime)
        except SQLAlchemyError as exc:
            if restaurar_prueba:
                raise fail(f"Base de datos no disponible: {exc.__class__.__name__}") from None
            catalog = None
            typer.secho(
                "AVISO  sin catálogo (base de datos no disponible): solo se cotejan archivo y manifiesto",
                fg=typer.colors.YELLOW,
            )
        if todos:
            ids = {m.id_backup for _, m in repo.manifests()}
            ids |= {e.id_backup for e in (catalog or {}).values() if e.expected_on_disk}
            keys = [str(i) for i in sorted(ids)]
        else:
            keys = [id_o_archivo]
        if not keys:
            raise fail(f"No hay backups en {repo.directory}")
        for key in keys:
            try:
                chain = restore.verified_chain(repo, key)
                if catalog is not None:
                    restore.check_against_catalog(chain, catalog)
                detail = " — " + restore.restore_test(runtime, chain) if restaurar_prueba else ""
                last = chain[-1]
                typer.secho(
                    f"OK     {last.manifest.id_backup:>5} {last.path.name}{detail}", fg=typer.colors.GREEN
                )
            except restore.RestoreError as exc:
                failures += 1
                entry = (catalog or {}).get(int(key)) if key.isdigit() else None
                nota = (
                    " (el catálogo lo tiene como COMPLETADO: el archivo se perdió)"
                    if entry is not None and entry.expected_on_disk and not repo.exists(entry.nombre_archivo)
                    else ""
                )
                typer.secho(f"ERROR  {key}: {exc}{nota}", fg=typer.colors.RED)
    if failures:
        raise typer.Exit(1)


def earliest_instant(local: datetime, tz: tzinfo) -> datetime:
    """La hora local `local` en `tz` como instante, con los cambios de horario resueltos hacia el
    pasado: una hora que se repite (otoño) es la primera vez, y una que no existe (primavera, el
    reloj salta de 02:00 a 03:00) es la interpretación más temprana. Así "el punto de ese momento o
    anterior" nunca toma un backup posterior a lo que el usuario quiso decir."""
    candidates = (local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1))
    return min(candidates, key=lambda t: t.astimezone(UTC))


def _moment(text: str, tz: tzinfo) -> datetime:
    """`AAAA-MM-DD HH:MM` (o con segundos) en ZONA_HORARIA; también ISO 8601 (p. ej. la
    `fecha_instantanea` de GET /backup/puntos-restauracion, con su zona) y una fecha sola (el día
    entero: hasta las 23:59:59)."""
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise fail(
            f'--hasta debe tener la forma "AAAA-MM-DD HH:MM" (hora de ZONA_HORARIA; también con segundos, '
            f"una fecha sola o ISO 8601 con zona), no {text!r}",
            2,
        ) from None
    if parsed.tzinfo is not None:
        return parsed
    if len(raw) == 10:  # AAAA-MM-DD
        parsed = parsed.replace(hour=23, minute=59, second=59)
    return earliest_instant(parsed, tz)


@app.command("restaurar")
def restaurar(
    id_o_archivo: str = typer.Argument(
        None,
        help="Id del backup o nombre/ruta del archivo (.sql.gz); con --desde-remoto, por defecto el más reciente",
    ),
    hasta: str = typer.Option(
        None,
        "--hasta",
        help='"AAAA-MM-DD HH:MM" en ZONA_HORARIA: el punto más reciente con el estado de ese momento o anterior',
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
    """Restaura un backup con toda su cadena (completo, diferencial, incrementales) en una sola transacción."""
    remote_found: list[Descriptor] = []
    if desde_remoto:
        if hasta:
            raise fail("--hasta no se combina con --desde-remoto: indique el id del punto a recuperar", 2)
        from inventario.modules.remoto.cli import fetch_for_restore

        id_o_archivo, remote_found = fetch_for_restore(id_o_archivo, identidad)
    elif bool(id_o_archivo) == bool(hasta):
        raise fail('Indique un id o archivo, o bien --hasta "AAAA-MM-DD HH:MM" (o --desde-remoto)', 2)
    settings = settings_or_exit()
    repo = BackupRepo(settings.backup_dir)
    try:

        def anunciar(chain: list[Link]) -> None:
            typer.echo(
                f"Verificando {cantidad(len(chain), 'archivo')}: "
                + ", ".join(link.path.name for link in chain)
                + " ..."
            )

        # Todos los MD5 antes de tocar nada: un archivo dañado en medio de la cadena no deja nada a medias.
        if hasta:
            moment = _moment(hasta, settings.tz)
            point = repo.point_at(moment)
            typer.echo(
                f"Punto más reciente hasta {moment.astimezone(settings.tz):%Y-%m-%d %H:%M:%S} ({settings.ZONA_HORARIA}): backup "
                f"{point.link.manifest.id_backup} {point.link.manifest.tipo}, estado de la base al "
                f"{point.momento.astimezone(settings.tz):%Y-%m-%d %H:%M:%S}"
            )
            chain = restore.verify_chain(repo, point.chain, anunciar)
        else:
            chain = restore.verified_chain(repo, id_o_archivo, anunciar)
    except restore.RestoreError as exc:
        raise fail(f"No se restauró nada: {exc}") from None
    with runtime_context(migrate=False) as runtime:
        if destino:
            try:
                target = DatabaseServer(sqlalchemy_url(destino), embedded=False)
            except Exception:
                raise fail(
                    "--destino debe ser una URL postgresql://usuario@servidor:puerto/base "
                    "(o postgresql://usuario@/base?host=/carpeta/del/socket)",
                    2,
                ) from None
        else:
            target = runtime.server
        try:
            state = restore.inspect_target(target)
        except Exception as exc:
            raise fail(
                f"No se puede conectar con la base destino {url_sin_clave(target.url)}: {describe_connection_error(exc)}"
            ) from None
        if state.other_sessions:
            typer.secho(
                f"Atención: hay {state.other_sessions} sesiones abiertas en la base destino (¿el servicio sigue en marcha?); "
                "la restauración esperará a que liberen sus bloqueos.",
                fg=typer.colors.YELLOW,
            )
        if not state.empty and not si:
            from inventario.consola import confirmar

            confirmar(
                f"La base destino '{target.database}' tiene datos y será REEMPLAZADA por el backup. ¿Continuar?"
            )
        total = sum(link.manifest.tamanio_sin_comprimir for link in chain)
        try:
            with typer.progressbar(length=total, label="Restaurando") as bar:
                done = restore.restore(
                    runtime, chain, target, progress=bar.update, ejecutado_por=f"consola:{getpass.getuser()}"
                )
        except restore.RestoreError as exc:
            raise fail(str(exc)) from None
        if remote_found:
            _record_remote_copies(target, remote_found, settings.BACKUP_REMOTO)
    if done.problems:
        raise fail("Restaurado, pero las filas no coinciden con el manifiesto: " + "; ".join(done.problems))
    last = done.manifest
    typer.secho(
        f"Restaurado {last.tipo} {last.id_backup} ({last.nombre_archivo}): estado de la base al "
        f"{last.fecha_instantanea.isoformat()}, {sum(done.counts.values())} filas en {len(done.counts)} tablas. "
        f"Catálogo sincronizado con {repo.directory} "
        f"({cantidad(done.synced, 'registro actualizado', 'registros actualizados')}).",
        fg=typer.colors.GREEN,
    )
    if not destino:
        _full_after_restore(repo, last)


def _full_after_restore(repo: BackupRepo, restored: Manifiesto) -> None:
    """Tras restaurar la base del servicio a un punto que no es el último: un COMPLETO del estado
    restaurado, ya. Sin él, el punto más reciente de BACKUP_PATH seguiría siendo uno posterior al
    restaurado (el estado que se quiso deshacer), y `restaurar` sin más, `--hasta` con una hora de
    después o GET /puntos-restauracion lo tomarían hasta el backup siguiente."""
    later = [p for p in repo.points() if p.momento > restored.fecha_instantanea]
    if not later:
        return
    typer.echo(
        f"Hay {cantidad(len(later), 'backup posterior', 'backups posteriores')} al restaurado: "
        "se hace un COMPLETO del estado restaurado para que sea el punto más reciente ..."
    )
    try:
        with runtime_context(migrate=False) as runtime:
            row = BackupService(runtime, notifier=notify).run(
                TipoSolicitado.COMPLETO, f"consola:{getpass.getuser()}"[:100]
            )
    except DomainError as exc:
        typer.secho(
            f"Atención: no se pudo hacer ese COMPLETO ({exc.mensaje}). Hasta que haya uno, el punto más "
            "reciente sigue siendo posterior al restaurado: haga uno (.venv/bin/inventario backup ejecutar "
            "--tipo COMPLETO) antes de restaurar «lo último».",
            fg=typer.colors.YELLOW,
            err=True,
        )
        return
    typer.secho(
        f"COMPLETO {row.id_backup} ({row.nombre_archivo}): desde ahora es el punto más reciente.",
        fg=typer.colors.GREEN,
    )


def _record_remote_copies(target: DatabaseServer, found: list[Descriptor], destino: str | None) -> None:
    """Tras restaurar desde el remoto, el catálogo de la base restaurada sabe qué está ya copiado."""
    from inventario.database import make_engine, make_session_factory
    from inventario.modules.remoto.service import record_remote_copies

    engine = make_engine(target.url)
    try:
        with make_session_factory(engine)() as session:
            record_remote_copies(session, found, destino)
            session.commit()
    finally:
        engine.dispose()


def _register_remote() -> None:
    from inventario.modules.remoto.cli import clave_app, remoto_app

    app.add_typer(clave_app, name="clave")
    app.add_typer(remoto_app, name="remoto")


_register_remote()
