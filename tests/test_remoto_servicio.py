"""RemotoService contra una base real y destinos reales en loopback: copiar tras FULL y DIFF (la cadena
primero), servidor caído → ERROR + ROJO sin tocar el backup local, reintento, retención remota."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pyrage import x25519
from sqlalchemy import select

from inventario.config import Settings
from inventario.errors import DomainError
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.service import BackupService
from inventario.modules.notificaciones.model import Notificacion
from inventario.modules.remoto import transfer
from inventario.modules.remoto.model import CopiaRemota
from inventario.modules.remoto.rclone import Rclone, RemotoError
from inventario.modules.remoto.service import RemotoService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime, open_runtime
from tests.backup_support import connect, seed_user
from tests.remoto_support import Destino, destino


@pytest.fixture
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


def remote_settings(
    settings: Settings, dest: Destino, identity: x25519.Identity, **extra: object
) -> Settings:
    return settings.model_copy(
        update={
            "BACKUP_REMOTO": dest.remote,
            "BACKUP_REMOTO_CONFIG": str(dest.config) if dest.config else None,
            "BACKUP_CIFRADO_DESTINATARIOS": str(identity.to_public()),
            **extra,
        }
    )


@pytest.fixture
def remote_runtime(
    request: pytest.FixtureRequest,
    settings: Settings,
    fresh_db: DatabaseServer,
    tmp_path: Path,
    identity: x25519.Identity,
) -> Iterator[tuple[Runtime, Destino]]:
    kind = getattr(request, "param", "s3")
    with destino(kind, tmp_path / "remoto") as dest:
        rt = open_runtime(remote_settings(settings, dest, identity), fresh_db, migrate=False)
        try:
            yield rt, dest
        finally:
            rt.close()


def plain(rt: Runtime) -> BackupService:
    """Backups sin la copia automática (el mismo servidor y directorio, sin BACKUP_REMOTO): las pruebas
    de RemotoService deciden ellas cuándo copiar."""
    settings = rt.settings.model_copy(update={"BACKUP_REMOTO": None})
    return BackupService(dataclasses.replace(rt, settings=settings, owns_server=False), notifier=None)


def _state(rt: Runtime, id_backup: int) -> CopiaRemota | None:
    with rt.session_factory() as session:
        return session.get(CopiaRemota, id_backup)


def _red(rt: Runtime) -> list[Notificacion]:
    with rt.session_factory() as session:
        return list(session.scalars(select(Notificacion).where(Notificacion.semaforo == "ROJO")))


@pytest.mark.parametrize("remote_runtime", ["s3", "sftp", "dir"], indirect=True)
def test_completo_y_diferencial_se_copian_y_verifican(
    remote_runtime: tuple[Runtime, Destino], identity: x25519.Identity, tmp_path: Path
) -> None:
    rt, dest = remote_runtime
    with connect(rt.server) as conn:
        seed_user(conn)
    backups = plain(rt)
    full = backups.run("COMPLETO", "MANUAL")
    diff = backups.run("DIFERENCIAL", "MANUAL")
    service = RemotoService(rt)
    # Solo el diferencial: su completo base sube primero (sin él no se puede restaurar).
    state = service.copy(diff.id_backup)
    assert state.estado == "COPIADO" and state.cifrado and state.objeto == diff.nombre_archivo + ".age"
    base_state = _state(rt, full.id_backup)
    assert base_state is not None and base_state.estado == "COPIADO"
    assert base_state.fecha_copia is not None and base_state.hash_remoto and base_state.sha256_remoto

    rclone = Rclone(dest.remote, str(dest.config) if dest.config else None)
    found, broken = transfer.descriptors(rclone)
    assert broken == [] and [d.id_backup for d in found] == [full.id_backup, diff.id_backup]
    assert found[1].nombre_archivo_base == full.nombre_archivo and found[1].id_backup_base == full.id_backup
    for desc in found:
        transfer.check_object(rclone, desc.datos)
        remote_bytes = dest.object_path(desc.datos.nombre).read_bytes()
        assert not remote_bytes.startswith(b"\x1f\x8b")
    # Lo subido, descifrado, es byte a byte el archivo local (cuyo MD5 es el del catálogo).
    out = tmp_path / "d"
    out.mkdir()
    transfer.fetch_object(rclone, found[1].datos, out / found[1].datos.nombre)
    transfer.open_object(out / found[1].datos.nombre, out / diff.nombre_archivo, [identity], True)
    assert (out / diff.nombre_archivo).read_bytes() == (
        rt.settings.backup_dir / diff.nombre_archivo
    ).read_bytes()


@pytest.mark.parametrize("remote_runtime", ["s3"], indirect=True)
def test_servidor_caido_error_rojo_y_luego_se_copia(remote_runtime: tuple[Runtime, Destino]) -> None:
    rt, dest = remote_runtime
    full = plain(rt).run("COMPLETO", "MANUAL")
    dest.stop()
    service = RemotoService(rt)
    with pytest.raises(RemotoError):
        service.copy(full.id_backup)
    state = _state(rt, full.id_backup)
    assert state is not None and state.estado == "ERROR" and state.intentos == 1
    assert state.mensaje_error and "rclone" in state.mensaje_error and state.proximo_intento is not None
    red = _red(rt)
    assert [n.titulo for n in red] == [f"❌ Error al copiar el backup {full.id_backup} fuera del sitio"]
    assert dest.secret not in red[0].mensaje
    with rt.session_factory() as session:
        local = session.get(HistorialBackup, full.id_backup)
        assert local is not None and local.estado == "COMPLETADO"  # el backup local sigue bueno
        assert RemotoService(rt).pending(session) == [full.id_backup]
    # La siguiente corrida (servidor de vuelta) lo copia.
    dest.start()
    done, failed = service.copy_pending()
    assert done == [full.id_backup] and failed == {}
    state = _state(rt, full.id_backup)
    assert (
        state is not None
        and state.estado == "COPIADO"
        and state.mensaje_error is None
        and state.intentos == 0
    )


@pytest.mark.parametrize("remote_runtime", ["dir"], indirect=True)
def test_reintento_en_segundo_plano(remote_runtime: tuple[Runtime, Destino]) -> None:
    rt, dest = remote_runtime
    full = plain(rt).run("COMPLETO", "MANUAL")
    # El destino es un "disco USB" no montado: la ruta padre es un archivo, rclone no puede crearla.
    blocker = dest.storage.parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("no es un directorio")
    service = RemotoService(rt)
    service.retry_delays = (0.5, 0.5)
    from inventario.modules.remoto.service import wait_background

    thread = service.copy_in_background(full.id_backup)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = _state(rt, full.id_backup)
        if state is not None and state.intentos >= 1:
            break
        time.sleep(0.1)
    blocker.unlink()  # se "monta" el disco: el reintento debe llegar
    assert wait_background(60, give_up_retries=False)
    assert not thread.is_alive()
    state = _state(rt, full.id_backup)
    assert state is not None and state.estado == "COPIADO"
    assert (dest.storage / (full.nombre_archivo + ".age")).exists()
    assert len(_red(rt)) >= 1


@pytest.mark.parametrize("remote_runtime", ["sftp"], indirect=True)
def test_retencion_remota_por_cadenas_y_solo_lo_nuestro(remote_runtime: tuple[Runtime, Destino]) -> None:
    rt, dest = remote_runtime
    backups = plain(rt)
    ids = [
        backups.run(tipo, "MANUAL").id_backup
        for tipo in ("COMPLETO", "DIFERENCIAL", "COMPLETO", "DIFERENCIAL")
    ]
    service = RemotoService(rt)
    with rt.session_factory() as session:
        assert service.summary(session)["pendientes"] == 4  # al activar la función, todo pendiente
    done, failed = service.copy_pending()
    assert failed == {} and done == [ids[2], ids[3], ids[1], ids[0]]  # la cadena vigente primero
    with rt.session_factory() as session:
        summary = service.summary(session)
    assert summary["pendientes"] == 0 and summary["copiados"] == 4 and summary["errores"] == 0
    ajeno = dest.storage / "backup_20200101_000000_FULL.sql.gz"
    ajeno.write_bytes(b"de otra instalacion")
    (dest.storage / "notas.txt").write_text("no tocar")
    with rt.session_factory() as session:
        # El "ahora" de la retención: todos viejos salvo el último diferencial, que depende del 2.º completo.
        last = session.get(HistorialBackup, ids[3])
        assert last is not None and last.fecha_creacion is not None
        now = last.fecha_creacion + timedelta(days=rt.settings.remoto_retention_days, microseconds=-1)
    result = service.cleanup(now)
    assert sorted(result.eliminados) == [ids[0], ids[1]]
    assert result.conservados_por_dependencia == [ids[2]]
    left = sorted(p.name for p in dest.storage.iterdir())
    assert ajeno.name in left and "notas.txt" in left
    rclone = service.rclone()
    assert [d.id_backup for d in transfer.descriptors(rclone)[0]] == [ids[2], ids[3]]
    assert not any(n.startswith(f"{_name(rt, ids[0])}") for n in left)
    state = _state(rt, ids[0])
    assert state is not None and state.eliminado_remoto and state.fecha_eliminacion_remota is not None
    with rt.session_factory() as session:
        local = session.get(HistorialBackup, ids[0])
        assert local is not None and not local.eliminado  # retención local independiente
    assert service.cleanup(now).eliminados == []
    # Las copias dejaron de llegar más días que la retención: todo es viejo, y aun así quedan la copia
    # más reciente (el diferencial) y su completo; antes se borraba el diferencial.
    later = now + timedelta(days=rt.settings.remoto_retention_days * 3)
    assert service.cleanup(later).eliminados == []
    assert [d.id_backup for d in transfer.descriptors(rclone)[0]] == [ids[2], ids[3]]


def _name(rt: Runtime, id_backup: int) -> str:
    with rt.session_factory() as session:
        row = session.get(HistorialBackup, id_backup)
        assert row is not None
        return row.nombre_archivo


def test_archivo_local_danado_no_sale(
    settings: Settings, fresh_db: DatabaseServer, tmp_path: Path, identity: x25519.Identity
) -> None:
    with destino("dir", tmp_path / "remoto") as dest:
        rt = open_runtime(remote_settings(settings, dest, identity), fresh_db, migrate=False)
        try:
            full = plain(rt).run("COMPLETO", "MANUAL")
            path = rt.settings.backup_dir / full.nombre_archivo
            data = bytearray(path.read_bytes())
            data[-20] ^= 0xFF
            path.write_bytes(bytes(data))
            with pytest.raises(DomainError, match="dañado"):
                RemotoService(rt).copy(full.id_backup)
            assert not dest.storage.exists() or not list(dest.storage.iterdir())
        finally:
            rt.close()


def test_health_degradado_si_el_ultimo_backup_no_llego_al_remoto(
    settings: Settings, fresh_db: DatabaseServer, tmp_path: Path, identity: x25519.Identity
) -> None:
    import time

    from fastapi.testclient import TestClient

    from inventario.main import create_app

    with destino("dir", tmp_path / "remoto") as dest:
        # Un "disco USB" sin montar: la ruta padre del destino es un archivo y no se puede copiar.
        dest.storage.parent.parent.mkdir(parents=True, exist_ok=True)
        dest.storage.parent.write_text("sin montar")
        configured = remote_settings(settings, dest, identity, BACKUP_REMOTO_MAX_HORAS=0.0005)  # 1,8 s
        app = create_app(configured, server=fresh_db, with_scheduler=False)
        with TestClient(app) as client:
            body = client.get("/health").json()
            assert body["estado"] == "OK" and body["fuera_del_sitio"]["configurado"] is True
            rt = open_runtime(configured, fresh_db, migrate=False)
            try:
                full = plain(rt).run("COMPLETO", "MANUAL")
                assert client.get("/health").json()["fuera_del_sitio"]["estado"] == "OK"  # aún a tiempo
                time.sleep(2)
                body = client.get("/health").json()
                assert body["estado"] == "DEGRADADO"
                offsite = body["fuera_del_sitio"]
                assert offsite["estado"] == "DEGRADADO" and offsite["destino"] == dest.remote
                assert f"El backup {full.id_backup} no llegó fuera del sitio" in offsite["mensaje"]
                dest.storage.parent.unlink()  # se monta el disco
                RemotoService(rt).copy(full.id_backup)
                body = client.get("/health").json()
                assert body["estado"] == "OK" and body["fuera_del_sitio"]["estado"] == "OK"
            finally:
                rt.close()
    # Sin BACKUP_REMOTO la sección dice que no está configurado y no cambia el estado.
    app = create_app(settings, server=fresh_db, with_scheduler=False)
    with TestClient(app) as client:
        assert client.get("/health").json()["fuera_del_sitio"] == {"estado": "OK", "configurado": False}


@pytest.mark.parametrize("remote_runtime", ["s3"], indirect=True)
def test_copia_automatica_tras_cada_backup_y_reintento_en_el_job(
    remote_runtime: tuple[Runtime, Destino],
) -> None:
    from datetime import datetime

    from inventario.jobs import backup_job
    from inventario.modules.planificador.resultado import ContextoJob
    from inventario.modules.remoto.service import wait_background

    rt, dest = remote_runtime
    backups = BackupService(rt, notifier=None)
    full = backups.run("COMPLETO", "MANUAL")
    assert wait_background(120)
    state = _state(rt, full.id_backup)
    assert state is not None and state.estado == "COPIADO"
    assert (dest.storage / (full.nombre_archivo + ".age")).exists()

    # Servidor caído: el diferencial se hace igual (COMPLETADO), su copia queda en ERROR con aviso ROJO.
    dest.stop()
    diff = backups.run("DIFERENCIAL", "MANUAL")
    assert wait_background(120)
    state = _state(rt, diff.id_backup)
    assert state is not None and state.estado == "ERROR" and state.mensaje_error
    with rt.session_factory() as session:
        local = session.get(HistorialBackup, diff.id_backup)
        assert local is not None and local.estado == "COMPLETADO" and local.mensaje_error is None
    assert [n.titulo for n in _red(rt)] == [f"❌ Error al copiar el backup {diff.id_backup} fuera del sitio"]

    # La siguiente corrida programada: su propio backup y lo que quedó pendiente llegan al remoto.
    dest.start()
    ctx = ContextoJob(rt, datetime.now(rt.settings.tz), manual=False, ejecutado_por="SCHEDULER")
    result = backup_job.run(ctx)
    assert result.estado == "OK" and "Fuera del sitio: 1 pendiente copiado" in result.mensaje
    with rt.session_factory() as session:
        states = {
            r.id_backup: r.estado for r in session.execute(select(CopiaRemota.id_backup, CopiaRemota.estado))
        }
    assert set(states.values()) == {"COPIADO"} and len(states) == 3
    assert len(transfer.descriptors(RemotoService(rt).rclone())[0]) == 3


@pytest.mark.parametrize("remote_runtime", ["dir"], indirect=True)
def test_retencion_remota_no_rompe_una_cadena_de_incrementales(
    remote_runtime: tuple[Runtime, Destino],
) -> None:
    """Un incremental reciente necesita TODOS los eslabones anteriores, no solo su base directa."""
    rt, _ = remote_runtime
    backups = plain(rt)
    with connect(rt.server) as conn:
        seed_user(conn)
    ids = [backups.run("COMPLETO", "MANUAL").id_backup]
    for n in range(3):
        with connect(rt.server) as conn:
            conn.execute("INSERT INTO productos (codigo, nombre) VALUES (%s, 'p')", (f"INC-{n}",))
        row = backups.run("INCREMENTAL", "MANUAL")
        assert row.tipo == "INCREMENTAL" and row.id_backup_base == ids[-1]
        ids.append(row.id_backup)
    service = RemotoService(rt)
    assert service.copy_pending()[1] == {}
    with rt.session_factory() as session:
        last = session.get(HistorialBackup, ids[-1])
        assert last is not None and last.fecha_creacion is not None
        now = last.fecha_creacion + timedelta(days=rt.settings.remoto_retention_days, microseconds=-1)
    result = service.cleanup(now)
    assert result.eliminados == [] and sorted(result.conservados_por_dependencia) == ids[:3]
    found, _ = transfer.descriptors(service.rclone())
    assert [d.id_backup for d in found] == ids


@pytest.mark.parametrize("remote_runtime", ["dir"], indirect=True)
def test_cada_incremental_del_job_tambien_se_copia_fuera_del_sitio(
    remote_runtime: tuple[Runtime, Destino], fresh_db: DatabaseServer
) -> None:
    """El RPO fuera del sitio es el mismo: el incremental sube como los demás backups."""
    from inventario.modules.planificador.service import JobsService
    from inventario.modules.remoto.service import wait_background
    from tests.backup_support import MIERCOLES, tocar_producto
    from tests.backup_support import fill_inventario as fill

    rt, _ = remote_runtime
    fill(fresh_db)
    jobs = JobsService(rt)
    first = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=13, minute=0, second=1))
    assert first.estado == "OK", first.mensaje  # sin completo: se hizo COMPLETO
    tocar_producto(fresh_db, "venta")
    second = jobs.run_due("backup_incremental", MIERCOLES.replace(hour=13, minute=15, second=1))
    assert second.estado == "OK" and second.mensaje.startswith("Backup INCREMENTAL "), second.mensaje
    wait_background()
    with rt.session_factory() as session:
        rows = {r.tipo: r.id_backup for r in session.scalars(select(HistorialBackup))}
        copies = {c.id_backup: c.estado for c in session.scalars(select(CopiaRemota))}
    assert copies.get(rows["INCREMENTAL"]) == "COPIADO" and copies.get(rows["COMPLETO"]) == "COPIADO", copies


def test_recopiar_un_diferencial_cuya_base_borro_la_retencion_remota(
    remote_runtime: tuple[Runtime, Destino], identity: x25519.Identity
) -> None:
    """La retención remota borró un completo y su diferencial; el admin vuelve a copiar el diferencial
    (POST /{id}/copiar-remoto o `backup remoto subir ID`): su completo sube otra vez, y la cadena del
    remoto se puede restaurar."""
    from inventario.modules.remoto import recuperar

    rt, dest = remote_runtime
    backups = plain(rt)
    ids = [backups.run(t, "MANUAL").id_backup for t in ("COMPLETO", "DIFERENCIAL", "COMPLETO", "DIFERENCIAL")]
    service = RemotoService(rt)
    assert service.copy_pending()[1] == {}
    with rt.session_factory() as session:
        last = session.get(HistorialBackup, ids[3])
        assert last is not None and last.fecha_creacion is not None
        now = last.fecha_creacion + timedelta(days=rt.settings.remoto_retention_days, microseconds=-1)
    assert sorted(service.cleanup(now).eliminados) == [ids[0], ids[1]]
    state = service.copy(ids[1])
    assert state.estado == "COPIADO" and not state.eliminado_remoto
    found, broken = transfer.descriptors(service.rclone())
    assert broken == [] and [d.id_backup for d in found] == ids
    base = _state(rt, ids[0])
    assert base is not None and base.estado == "COPIADO" and not base.eliminado_remoto
    chain = recuperar.pick_chain(found, str(ids[1]))
    assert [d.id_backup for d in chain] == [ids[0], ids[1]]
    # Y la cadena de verdad se baja y se descifra entera (SHA-256, MD5 contra el manifiesto).
    fetched = recuperar.fetch_chain(service.rclone(), str(ids[1]), [identity], dest.root / "recuperado")
    assert [t.descriptor.id_backup for t in fetched] == [ids[0], ids[1]]
