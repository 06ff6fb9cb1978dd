"""Copias fuera del sitio, las piezas sueltas: rclone contra S3, SFTP y un directorio reales en loopback,
cifrado age por streaming, descriptores, verificación y la clave."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrage import x25519
from typer.testing import CliRunner

from inventario.config import ConfigError, load_settings
from inventario.modules.remoto import rclone as rclone_mod
from inventario.modules.remoto import transfer
from inventario.modules.remoto.cifrado import (
    AGE_MAGIC,
    CifradoError,
    encrypt_hashing,
    load_identities,
    parse_recipients,
)
from inventario.modules.remoto.rclone import Rclone, RemotoError
from tests.remoto_support import KINDS, Destino, destino, forjar, objeto_remoto

SQL = "".join(f"INSERT INTO productos VALUES ({i}, 'Producto {i}', 'SKU-{i:06d}');\n" for i in range(20000))


@pytest.fixture(params=KINDS)
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destino]:
    with destino(request.param, tmp_path / "remoto") as d:
        yield d


@pytest.fixture
def backup_file(tmp_path: Path) -> Path:
    path = tmp_path / "backups" / "backup_20261201_030000_FULL.sql.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(SQL.encode()))
    return path


@pytest.fixture
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


def _public(path: Path) -> dict[str, object]:
    return {
        "id_backup": 7,
        "tipo": "COMPLETO",
        "nombre_archivo": path.name,
        "fecha_creacion": datetime(2026, 12, 1, 3, tzinfo=UTC),
    }


def _rclone(dest: Destino) -> Rclone:
    return Rclone(dest.remote, str(dest.config) if dest.config else None)


MANIFEST = b'{"id_backup": 7, "tablas": [{"nombre": "productos", "filas": 20000}]}'


def test_subir_verificar_y_bajar_cifrado(
    dest: Destino, backup_file: Path, identity: x25519.Identity, tmp_path: Path
) -> None:
    rclone = _rclone(dest)
    desc = transfer.push(
        rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path / "trabajo"
    )
    assert desc.cifrado and desc.datos.nombre == backup_file.name + ".age"
    assert sorted(os.listdir(dest.storage)) == sorted(desc.objetos)
    assert not list((tmp_path / "trabajo").iterdir()), "el temporal cifrado no se borró"

    # Lo que guarda el remoto no es gzip ni SQL: es age; el manifiesto (filas) tampoco se lee.
    stored = dest.object_path(desc.datos.nombre).read_bytes()
    assert stored.startswith(AGE_MAGIC) and not stored.startswith(b"\x1f\x8b")
    assert b"INSERT" not in stored and b"productos" not in stored
    manifest_stored = dest.object_path(desc.manifiesto.nombre).read_bytes()
    assert manifest_stored.startswith(AGE_MAGIC) and b"productos" not in manifest_stored
    public_text = dest.object_path(desc.nombre_descriptor).read_text()
    assert "productos" not in public_text and "20000" not in public_text

    found, broken = transfer.descriptors(rclone)
    assert broken == [] and [d.id_backup for d in found] == [7]
    assert found[0] == desc
    transfer.check_object(rclone, desc.datos)

    # De vuelta: bajar verificando y descifrar da exactamente el archivo original.
    down = tmp_path / "bajado"
    down.mkdir()
    transfer.fetch_object(rclone, desc.datos, down / desc.datos.nombre)
    transfer.open_object(down / desc.datos.nombre, down / backup_file.name, [identity], True)
    assert (down / backup_file.name).read_bytes() == backup_file.read_bytes()
    manifest = transfer.decrypt_bytes(rclone.read_bytes(desc.manifiesto.nombre), [identity], True)
    assert manifest == MANIFEST


def test_sin_destinatarios_viaja_sin_cifrar(tmp_path: Path, backup_file: Path) -> None:
    with destino("dir", tmp_path / "remoto") as dest:
        desc = transfer.push(_rclone(dest), backup_file, MANIFEST, _public(backup_file), None, tmp_path / "t")
        assert not desc.cifrado and desc.datos.nombre == backup_file.name
        assert dest.object_path(backup_file.name).read_bytes() == backup_file.read_bytes()


def test_un_byte_cambiado_en_el_remoto_se_detecta(
    dest: Destino, backup_file: Path, identity: x25519.Identity, tmp_path: Path
) -> None:
    rclone = _rclone(dest)
    desc = transfer.push(
        rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path
    )
    obj = dest.object_path(desc.datos.nombre)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    obj.write_bytes(bytes(data))
    with pytest.raises(RemotoError, match="dañada"):
        transfer.check_object(rclone, desc.datos)
    target = tmp_path / "bajado.age"
    with pytest.raises(RemotoError, match="no coincide"):
        transfer.fetch_object(rclone, desc.datos, target)
    assert not target.exists() and not list(tmp_path.glob("*.parcial"))


@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_servidor_caido_da_error_claro(
    kind: str, tmp_path: Path, backup_file: Path, identity: x25519.Identity
) -> None:
    with destino(kind, tmp_path / "remoto") as dest:
        dest.stop()
        rclone = Rclone(dest.remote, str(dest.config))
        rclone.timeout = 60
        with pytest.raises(RemotoError, match=r"rclone operations/(fsinfo|copyfile) falló"):
            transfer.push(
                rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path
            )
        assert not list(tmp_path.glob("*.parcial"))
        # De vuelta el servidor, la misma subida funciona.
        dest.start()
        desc = transfer.push(
            rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path
        )
        transfer.check_object(rclone, desc.datos)


@pytest.mark.parametrize("kind", ["s3", "sftp"])
def test_ninguna_credencial_en_argv_ni_en_logs(
    kind: str, tmp_path: Path, backup_file: Path, identity: x25519.Identity, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with destino(kind, tmp_path / "remoto") as dest:
        seen: list[str] = []
        done = threading.Event()

        def watch() -> None:
            # Cada proceso de la máquina mientras dura la subida: el rclone residente (rcd), los rclone
            # que lanzamos y el servidor.
            while not done.is_set():
                for pid in os.listdir("/proc"):
                    if not pid.isdigit():
                        continue
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    except OSError:
                        continue
                    if "rclone" in cmdline:
                        seen.append(cmdline)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            rclone = _rclone(dest)
            desc = transfer.push(
                rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path
            )
            transfer.check_object(rclone, desc.datos)
            transfer.descriptors(rclone)
        finally:
            done.set()
            watcher.join()
        assert any(" rcd " in c for c in seen) and any(" cat " in c for c in seen), seen[:5]
        assert not [c for c in seen if dest.secret in c]
        assert dest.secret not in caplog.text


def test_identidad_equivocada_no_toca_nada(
    tmp_path: Path, backup_file: Path, identity: x25519.Identity
) -> None:
    with destino("dir", tmp_path / "remoto") as dest:
        rclone = _rclone(dest)
        desc = transfer.push(
            rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path
        )
        transfer.fetch_object(rclone, desc.datos, tmp_path / desc.datos.nombre)
        target = tmp_path / "restaurado.sql.gz"
        with pytest.raises(CifradoError, match="La identidad no corresponde"):
            transfer.open_object(tmp_path / desc.datos.nombre, target, [x25519.Identity.generate()], True)
        assert not target.exists() and not list(tmp_path.glob("*.parcial"))
        with pytest.raises(CifradoError, match="indique la identidad"):
            transfer.open_object(tmp_path / desc.datos.nombre, target, None, True)


def test_config_legible_por_otros_se_rechaza(tmp_path: Path) -> None:
    with destino("s3", tmp_path / "remoto") as dest:
        assert dest.config is not None
        dest.config.chmod(0o644)
        with pytest.raises(RemotoError, match="chmod 600"):
            _rclone(dest).list()


def test_configuracion_validada() -> None:
    key = str(x25519.Identity.generate().to_public())
    other = str(x25519.Identity.generate().to_public())
    settings = load_settings(BACKUP_CIFRADO_DESTINATARIOS=f" {key},\n{other} ", BACKUP_REMOTO="s3:cubeta/x")
    assert settings.BACKUP_CIFRADO_DESTINATARIOS == f"{key} {other}"
    assert len(parse_recipients(settings.BACKUP_CIFRADO_DESTINATARIOS)) == 2
    assert settings.remoto_retention_days == settings.BACKUP_RETENTION_DAYS
    assert load_settings(BACKUP_REMOTO="", BACKUP_CIFRADO_DESTINATARIOS="").BACKUP_REMOTO is None
    with pytest.raises(ConfigError, match="BACKUP_CIFRADO_DESTINATARIOS"):
        load_settings(BACKUP_CIFRADO_DESTINATARIOS="age1noesunaclave")
    secret = str(x25519.Identity.generate())
    with pytest.raises(ConfigError, match="no es una clave pública age") as err:
        load_settings(BACKUP_CIFRADO_DESTINATARIOS=secret)
    assert secret not in str(err.value), "una clave privada pegada por error no se repite entera"
    with pytest.raises(ConfigError, match="línea de órdenes"):
        load_settings(BACKUP_REMOTO=":s3,access_key_id=AK,secret_access_key=SK:cubeta")
    with pytest.raises(ConfigError, match="parámetros"):
        load_settings(BACKUP_REMOTO="s3,secret_access_key=SK:cubeta")


def test_clave_generar(tmp_path: Path) -> None:
    from inventario.cli import app

    out = tmp_path / "clave.txt"
    result = CliRunner().invoke(app, ["backup", "clave", "generar", "--salida", str(out)])
    assert result.exit_code == 0, result.output
    public = result.stdout.strip().splitlines()[0]
    assert public.startswith("age1")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    identities = load_identities(out)
    assert str(identities[0].to_public()) == public
    # Lo cifrado para la clave pública impresa se abre con el archivo generado.
    assert pyrage.decrypt(pyrage.encrypt(b"hola", [x25519.Recipient.from_str(public)]), identities) == b"hola"
    before = out.read_bytes()
    again = CliRunner().invoke(app, ["backup", "clave", "generar", "--salida", str(out)])
    assert again.exit_code == 1 and "no se sobrescribe" in again.output
    assert out.read_bytes() == before


def test_residente_huerfano_se_para(tmp_path: Path) -> None:
    """Un servicio muerto con kill -9 no puede parar su rclone residente; el siguiente residente que
    arranca (cualquier proceso del mismo usuario) lo para y borra su carpeta."""
    programa = (
        "import os, sys, time\n"
        "from inventario.modules.remoto import rclone as r\n"
        "env = {'PATH': os.environ['PATH'], 'HOME': sys.argv[1]}\n"
        "r._daemon_call(r.rclone_binary(), env, 'rc/noop', {}, 10)\n"
        "d = next(iter(r._daemons.values()))\n"
        "print(d.proc.pid, d.folder, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", programa, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pid_texto, carpeta_texto = proc.stdout.readline().split()
    pid, carpeta = int(pid_texto), Path(carpeta_texto)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        assert _vivo(pid) and carpeta.exists()  # huérfano: nadie lo paró
        assert rclone_mod.sweep_orphans() >= 1
        deadline = time.monotonic() + 10
        while _vivo(pid):
            assert time.monotonic() < deadline, "el rclone huérfano sigue vivo"
            time.sleep(0.05)
        assert not carpeta.exists()
        # Los residentes vivos de este proceso no se tocan.
        assert rclone_mod.sweep_orphans() == 0
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


def _vivo(pid: int) -> bool:
    try:  # el estado va tras el nombre entre paréntesis; Z = ya terminó, falta que lo recojan
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@settings(max_examples=25, deadline=None)
@given(
    size=st.one_of(
        st.integers(0, 3 * 65536 + 17),
        st.sampled_from([65536, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024 + 5]),
    )
)
def test_cifrar_sumando_en_otro_hilo_da_lo_mismo(size: int) -> None:
    """encrypt_hashing cifra en un hilo y suma y escribe en otro: lo escrito se descifra al original y
    tamaño, MD5 y SHA-256 son los de los bytes escritos, para tamaños en los bordes de los bloques."""
    identity = x25519.Identity.generate()
    data = os.urandom(size)
    out = io.BytesIO()
    sink = encrypt_hashing(io.BytesIO(data), out, [identity.to_public()])
    written = out.getvalue()
    assert written.startswith(AGE_MAGIC)
    assert sink.size == len(written)
    assert sink.md5.hexdigest() == hashlib.md5(written).hexdigest()
    assert sink.sha256.hexdigest() == hashlib.sha256(written).hexdigest()
    assert pyrage.decrypt(written, [identity]) == data


def test_cifrar_con_disco_lleno_falla_sin_colgarse() -> None:
    """Si escribir la salida falla a mitad (disco lleno), el error llega a quien cifra y nada se cuelga
    esperando: el cifrado se corta y el hilo de las sumas termina."""

    class Lleno(io.RawIOBase):
        def __init__(self) -> None:
            self.escritos = 0

        def write(self, data: object) -> int:
            view = memoryview(data)  # type: ignore[arg-type]
            if self.escritos + len(view) > 600_000:
                raise OSError(28, "No queda espacio en el dispositivo")
            self.escritos += len(view)
            return len(view)

    before = threading.active_count()
    target = Lleno()
    with pytest.raises(OSError, match="espacio"):
        encrypt_hashing(io.BytesIO(os.urandom(5 * 1048576)), target, [x25519.Identity.generate().to_public()])
    assert 0 < target.escritos <= 600_000
    assert threading.active_count() == before, "quedó vivo el hilo de las sumas"


class _DiscoQueCorrompe(Rclone):
    """Un byte del archivo cifrado cambia en el disco local entre cifrarlo y que rclone lo lea."""

    def upload_dir(self, local: Path, rclone_checks_hash: bool = True) -> None:
        for item in local.iterdir():
            if item.name.endswith(".sql.gz.age"):
                data = bytearray(item.read_bytes())
                data[len(data) // 2] ^= 0x01
                item.write_bytes(bytes(data))
        super().upload_dir(local, rclone_checks_hash)


def test_lo_subido_distinto_de_lo_cifrado_se_detecta_y_no_se_publica(
    dest: Destino, backup_file: Path, identity: x25519.Identity, tmp_path: Path
) -> None:
    """La MD5 que informa el remoto se compara con la de los bytes que se cifraron (no con la del
    archivo que rclone leyó): un cambio en medio se detecta y el descriptor no se sube."""
    rclone = _DiscoQueCorrompe(dest.remote, str(dest.config) if dest.config else None)
    assert rclone.reports_md5(), f"{dest.kind} debería informar MD5"
    with pytest.raises(RemotoError, match="MD5"):
        transfer.push(rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path)
    assert not any(n.endswith(transfer.DESCRIPTOR_SUFFIX) for n in os.listdir(dest.storage))
    assert transfer.descriptors(rclone) == ([], [])


# ---------------------------------------------------------------- objetos forjados en el remoto
# Quien tiene escritura en el remoto (sin la identidad) puede dejar descriptores en claro: ninguno que
# esta aplicación no pudo subir se usa, y sus nombres nunca se toman como rutas.


def test_descriptor_con_rutas_no_crea_ni_borra_nada_fuera(tmp_path: Path) -> None:
    from inventario.errors import NoEncontrado
    from inventario.modules.remoto import recuperar

    victim = tmp_path / "victima.parcial"
    victim.write_text("importante")
    name = "backup_20991231_235959_FULL.sql.gz"
    with destino("dir", tmp_path / "remoto") as dest:
        # El manifiesto apunta a una ruta absoluta: bajarlo escribiría (y borraría) `victima.parcial`.
        forjar(dest.storage, name, b"x", b"{}", manifiesto=objeto_remoto(str(tmp_path / "victima"), b"{}"))
        rclone = _rclone(dest)
        found, broken = transfer.descriptors(rclone)
        assert found == []
        assert len(broken) == 1 and broken[0].startswith(name + ".remoto.json (")
        assert "manifiesto" in broken[0]
        target = tmp_path / "backups"
        with pytest.raises(NoEncontrado, match="ningún backup publicado válido"):
            recuperar.fetch_chain(rclone, None, None, target)
        # Ni pasándole el descriptor a mano: nunca se elige una cadena de un descriptor no válido.
        forged = transfer.Descriptor.model_validate_json(
            (dest.storage / (name + ".remoto.json")).read_bytes()
        )
        with pytest.raises(NoEncontrado):
            recuperar.fetch_chain(rclone, None, None, target, [forged])
    assert victim.read_text() == "importante"
    assert not list(tmp_path.glob("victima*[!l]")), "se creó un archivo junto a la víctima"
    assert not target.exists() or not [p for p in target.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "cambios",
    [
        {"nombre_archivo": "../backup_20991231_235959_FULL.sql.gz"},
        {"nombre_archivo": "/etc/backup_20991231_235959_FULL.sql.gz"},
        {"tipo": "DIFERENCIAL"},  # el nombre dice FULL
        {"tipo": "OTRO"},
        {"id_backup": 0},
        {"fecha_creacion": "2099-12-31T23:59:59"},  # sin zona: no se puede ordenar con las demás
        {"datos": objeto_remoto("../../otro.sql.gz", b"x")},
        {"datos": objeto_remoto("backup_20991231_235959_FULL.sql.gz.age", b"x")},  # dice cifrado=false
        {"manifiesto": objeto_remoto("backup_20991231_235959_FULL.sql.gz.manifest.json.age", b"{}")},
        {"id_backup_base": 1, "nombre_archivo_base": "backup_20990101_000000_FULL.sql.gz"},  # completo
        {
            "manifiesto": {
                **objeto_remoto("backup_20991231_235959_FULL.sql.gz.manifest.json", b"{}"),
                "md5": "zz",
            }
        },
    ],
)
def test_descriptores_no_validos_se_ignoran(tmp_path: Path, cambios: dict[str, object]) -> None:
    with destino("dir", tmp_path / "remoto") as dest:
        forjar(dest.storage, "backup_20991231_235959_FULL.sql.gz", b"x", b"{}", **cambios)
        found, broken = transfer.descriptors(_rclone(dest))
        assert found == [] and len(broken) == 1, (found, broken)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60), st.booleans())
def test_solo_valen_los_nombres_que_deriva_push(nombre: str, cifrado: bool) -> None:
    name = "backup_20261201_030000_FULL.sql.gz"
    expected = transfer.manifest_object_name(name, cifrado)
    desc = transfer.Descriptor.model_validate(
        {
            "id_backup": 7,
            "tipo": "COMPLETO",
            "nombre_archivo": name,
            "fecha_creacion": "2026-12-01T03:00:00+00:00",
            "cifrado": cifrado,
            "datos": objeto_remoto(transfer.data_object_name(name, cifrado), b"x"),
            "manifiesto": objeto_remoto(nombre, b"{}"),
        }
    )
    assert (transfer.descriptor_problem(desc) is None) == (nombre == expected)


def test_copia_sin_cifrar_forjada_se_rechaza_con_identidad(
    tmp_path: Path, backup_file: Path, identity: x25519.Identity
) -> None:
    from inventario.modules.remoto import recuperar

    manifest = json.dumps({"id_backup": 999, "nombre_archivo": "backup_20991231_235959_FULL.sql.gz"})
    with destino("dir", tmp_path / "remoto") as dest:
        rclone = _rclone(dest)
        transfer.push(rclone, backup_file, MANIFEST, _public(backup_file), [identity.to_public()], tmp_path)
        # Válido en forma, más reciente y con id mayor, pero en claro: un atacante sin la clave.
        forjar(dest.storage, "backup_20991231_235959_FULL.sql.gz", b"x", manifest.encode())
        found, broken = transfer.descriptors(rclone)
        assert broken == [] and len(found) == 2
        target = tmp_path / "recuperado"
        with pytest.raises(
            RemotoError, match=r"backup 999 \(backup_20991231_235959_FULL.sql.gz\).*NO está cifrado"
        ):
            recuperar.fetch_chain(rclone, None, [identity], target, found)
        # Sin identidad pero con cifrado configurado (BACKUP_CIFRADO_DESTINATARIOS), lo mismo.
        with pytest.raises(RemotoError, match="NO está cifrado"):
            recuperar.pick_chain(found, "999", require_encrypted=True)
        assert not [p for p in target.rglob("*") if p.is_file()]
        assert recuperar.pick_chain(found, "7", require_encrypted=True)[0].cifrado


def _desc(
    id_backup: int, segundo: int, tipo: str = "COMPLETO", base: tuple[int, str] | None = None
) -> transfer.Descriptor:
    suffix = {"COMPLETO": "FULL", "DIFERENCIAL": "DIFF"}[tipo]
    name = f"backup_20261201_0300{segundo:02d}_{suffix}.sql.gz"
    return transfer.Descriptor.model_validate(
        {
            "id_backup": id_backup,
            "tipo": tipo,
            "nombre_archivo": name,
            "fecha_creacion": f"2026-12-01T03:00:{segundo:02d}+00:00",
            "fecha_instantanea": f"2026-12-01T03:00:{segundo:02d}+00:00",
            "id_backup_base": base[0] if base else None,
            "nombre_archivo_base": base[1] if base else None,
            "cifrado": True,
            "datos": objeto_remoto(transfer.data_object_name(name, True), b"x"),
            "manifiesto": objeto_remoto(transfer.manifest_object_name(name, True), b"{}"),
        }
    )


def test_lo_mas_reciente_es_por_instantanea_y_un_id_repetido_no_se_elige_al_azar() -> None:
    from inventario.modules.remoto import recuperar

    full = _desc(1, 0)
    old = _desc(3, 10, "DIFERENCIAL", (1, full.nombre_archivo))  # línea abandonada, id mayor
    new = _desc(2, 20, "DIFERENCIAL", (1, full.nombre_archivo))  # posterior, con id menor
    assert recuperar.pick_chain([full, old, new], None) == [full, new]
    # Mismo momento: desempata el id.
    twin = _desc(4, 20)
    assert recuperar.pick_chain([full, new, twin], None) == [twin]
    # Dos backups con el mismo id (ids reutilizados): pedirlo por id es ambiguo y se rechaza.
    again = _desc(3, 30, "DIFERENCIAL", (1, full.nombre_archivo))
    with pytest.raises(RemotoError, match=r"2 backups con el id 3 .*indique el nombre del archivo"):
        recuperar.pick_chain([full, old, again], "3")
    assert recuperar.pick_chain([full, old, again], again.nombre_archivo) == [full, again]
