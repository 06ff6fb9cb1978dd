"""Los archivos de backup por dentro: gzip estándar escrito con zlib-ng, que leen el `gunzip` del
sistema y el gzip de Python; el nivel BACKUP_GZIP_NIVEL como está documentado; y los archivos de
antes (escritos con el zlib de Python) se siguen verificando, descargando y restaurando."""

from __future__ import annotations

import gzip
import hashlib
import random
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from inventario.config import Settings
from inventario.modules.backup import restore
from inventario.modules.backup.exceptions import RestoreError
from inventario.modules.backup.files import CORRUPT_GZIP, AtomicGzipWriter, iter_gzip, scan
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.repo import BackupRepo, manifest_path, read_manifest
from inventario.modules.backup.service import BackupService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.backup_support import (
    connect,
    drop_database,
    new_database,
    psql_file,
    sin_rastro_de_restauraciones,
    snapshot,
)
from tests.backup_support import fill_inventario as fill


def write(path: Path, chunks: list[bytes], level: int) -> AtomicGzipWriter:
    writer = AtomicGzipWriter(path, level)
    for chunk in chunks:
        writer.write(chunk)
    writer.finish()
    writer.commit()
    return writer


def dump_like(rows: int, seed: int = 7) -> bytes:
    """Texto como el de pg_dump (filas de COPY): compresible, pero no trivial."""
    rnd = random.Random(seed)
    lines = [
        f"{i}\tENTRADA\t{rnd.randint(1, 40000)}\t{rnd.randint(1, 200000)}\t{rnd.randint(1, 500)}\t"
        f"compra proveedor {rnd.choice('ABCDEFG')}\t{rnd.randint(1, 9)}\t"
        f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} {rnd.randint(0, 23):02d}:"
        f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}.{rnd.randint(0, 999999):06d}+00\n"
        for i in range(rows)
    ]
    return "".join(lines).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(
        st.one_of(st.binary(max_size=4096), st.binary(min_size=1, max_size=64).map(lambda b: b * 500)),
        max_size=12,
    ),
    level=st.integers(min_value=1, max_value=9),
)
def test_el_archivo_es_gzip_que_leen_gunzip_y_python(chunks: list[bytes], level: int) -> None:
    data = b"".join(chunks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "backup.sql.gz"
        writer = write(path, chunks, level)
        blob = path.read_bytes()
        assert blob[:3] == b"\x1f\x8b\x08"  # gzip, deflate
        assert subprocess.run(["gunzip", "-c", str(path)], capture_output=True, check=True).stdout == data
        assert gzip.decompress(blob) == data
        # El MD5 y el tamaño son los del archivo tal como quedó en disco.
        assert (writer.md5, writer.size, writer.uncompressed) == (
            hashlib.md5(blob).hexdigest(),
            len(blob),
            len(data),
        )
        with open(path, "rb") as fh:
            assert scan(fh, inflate=True) == (hashlib.md5(blob).digest(), len(data))
        assert b"".join(iter_gzip(path)) == data


def test_nivel_mas_alto_no_da_archivo_mas_grande_y_6_como_gzip_6(tmp_path: Path) -> None:
    """BACKUP_GZIP_NIVEL pasa tal cual a zlib-ng (escala 1-9 de gzip): 1 el más rápido y grande,
    6 (el de fábrica) del tamaño de `gzip -6` (+3 % como mucho)."""
    data = dump_like(60_000)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    sizes = {level: write(tmp_path / f"n{level}.sql.gz", chunks, level).size for level in (1, 4, 6)}
    assert sizes[1] > sizes[4] >= sizes[6]
    reference = subprocess.run(["gzip", "-6", "-c"], input=data, capture_output=True, check=True).stdout
    assert sizes[6] <= len(reference) * 1.03
    assert sizes[1] > len(reference)  # el nivel importa de verdad


def test_nivel_fuera_de_1_a_9_se_rechaza() -> None:
    for bad in (0, 10, -1):
        with pytest.raises(ValidationError, match="BACKUP_GZIP_NIVEL"):
            Settings(_env_file=None, BACKUP_GZIP_NIVEL=bad)
    assert Settings(_env_file=None, BACKUP_GZIP_NIVEL=9).BACKUP_GZIP_NIVEL == 9


def test_gzip_truncado_o_danado_se_detecta(tmp_path: Path) -> None:
    path = tmp_path / "b.sql.gz"
    write(path, [dump_like(2000)], 6)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with open(path, "rb") as fh, pytest.raises(Exception, match="truncado"):
        scan(fh, inflate=True)
    broken = bytearray(blob)
    broken[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(broken))
    with open(path, "rb") as fh, pytest.raises(CORRUPT_GZIP):
        scan(fh, inflate=True)


def _rewrite_with_old_writer(runtime: Runtime, row: HistorialBackup) -> str:
    """El archivo de `row` como lo escribía la versión anterior (gzip.GzipFile del zlib de Python,
    mismo contenido), con su manifiesto y su registro del catálogo al día. Devuelve su MD5."""
    path = runtime.settings.backup_dir / row.nombre_archivo
    content = gzip.decompress(path.read_bytes())
    old = path.with_name(path.name + ".viejo")
    with (
        open(old, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0) as gz,
    ):
        gz.write(content)
    blob = old.read_bytes()
    old.replace(path)
    md5 = hashlib.md5(blob).hexdigest()
    manifest = read_manifest(manifest_path(path))
    BackupRepo(runtime.settings.backup_dir).write_manifest(
        manifest.model_copy(update={"hash_md5": md5, "tamanio_bytes": len(blob)})
    )
    with connect(runtime.server) as conn:
        conn.execute(
            "UPDATE historial_backup SET hash_md5 = %s, tamanio_bytes = %s WHERE id_backup = %s",
            (md5, len(blob), row.id_backup),
        )
    return md5


def test_backups_del_escritor_anterior_se_verifican_descargan_y_restauran(
    runtime: Runtime, fresh_db: DatabaseServer, pg_server: DatabaseServer
) -> None:
    fill(fresh_db)
    service = BackupService(runtime)
    full = service.run("COMPLETO", "MANUAL")
    new_md5 = full.hash_md5
    old_md5 = _rewrite_with_old_writer(runtime, full)
    fill(fresh_db, 5, texto="y")
    diff = service.run("DIFERENCIAL", "MANUAL")  # ya con zlib-ng: una cadena mixta, como tras actualizar
    expected = snapshot(fresh_db)
    repo = BackupRepo(runtime.settings.backup_dir)
    chain = restore.verified_chain(repo, str(diff.id_backup))
    assert [link.manifest.hash_md5 for link in chain] == [old_md5, diff.hash_md5]
    assert old_md5 != new_md5  # de verdad es otro archivo (otro compresor), mismo contenido
    with runtime.session_factory() as session:
        row = session.get(HistorialBackup, full.id_backup)
        assert row is not None and repo.intact(row)
        verified = repo.open_verified(row)
        verified.fh.close()
    target = new_database(pg_server, fresh_db.database + "_viejo")
    try:
        restored = restore.restore(runtime, chain, target)
        assert restored.problems == []
        assert sin_rastro_de_restauraciones(snapshot(target)) == sin_rastro_de_restauraciones(expected)
    finally:
        drop_database(pg_server, target.database)
    # Y a mano, `gunzip -c | psql`, el completo viejo restaura lo mismo que antes.
    target = new_database(pg_server, fresh_db.database + "_mano")
    try:
        result = psql_file(runtime, target, runtime.settings.backup_dir / full.nombre_archivo)
        assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr
    finally:
        drop_database(pg_server, target.database)
    # Un byte cambiado en el archivo viejo: la verificación lo rechaza.
    path = runtime.settings.backup_dir / full.nombre_archivo
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(RestoreError):
        restore.verified_chain(repo, str(diff.id_backup))
