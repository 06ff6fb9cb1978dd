"""Archivos de backup: nombres, escritura atómica con MD5, manifiestos y comprobaciones.

Nada se escribe bajo su nombre final hasta estar completo, sincronizado en disco y con su MD5:
primero `<final>.parcial`, luego `fsync` y `rename`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from inventario.archivos import fsync_dir
from inventario.modules.backup.schemas import Manifiesto

TEMP_SUFFIX = ".parcial"
MANIFEST_SUFFIX = ".manifest.json"
SUFFIX = {"COMPLETO": "FULL", "DIFERENCIAL": "DIFF", "INCREMENTAL": "INCR"}
NAME_RE = re.compile(r"^backup_(\d{8})_(\d{6})_(FULL|DIFF|INCR)\.sql\.gz$")
CHUNK = 1024 * 1024


def backup_name(moment: datetime, tipo: str) -> str:
    return f"backup_{moment:%Y%m%d_%H%M%S}_{SUFFIX[tipo]}.sql.gz"


def manifest_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name + MANIFEST_SUFFIX)


class _HashingFile:
    """Archivo de salida que calcula el MD5 y cuenta bytes de lo que realmente llega a disco."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.md5.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class AtomicGzipWriter:
    """Escribe un `.sql.gz` en `<final>.parcial` y solo con `commit()` lo publica con su nombre."""

    def __init__(self, final: Path, level: int) -> None:
        self.final = final
        self.temp = final.with_name(final.name + TEMP_SUFFIX)
        self._raw = open(self.temp, "xb")
        self._hashing = _HashingFile(self._raw)
        self._gz = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=self._hashing, mtime=0)  # type: ignore[arg-type]
        self.uncompressed = 0
        self.md5 = ""
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self._gz.write(data)
        self.uncompressed += len(data)

    def finish(self) -> None:
        """Cierra el gzip y asegura los bytes en disco (aún bajo el nombre temporal)."""
        self._gz.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        self.md5 = self._hashing.md5.hexdigest()
        self.size = self._hashing.size

    def commit(self) -> None:
        os.replace(self.temp, self.final)
        fsync_dir(self.final.parent)

    def abort(self) -> None:
        for closer in (self._gz.close, self._raw.close):
            try:
                closer()
            except Exception:
                pass
        self.temp.unlink(missing_ok=True)


def write_manifest(manifest: Manifiesto, data_file: Path) -> Path:
    final = manifest_path(data_file)
    temp = final.with_name(final.name + TEMP_SUFFIX)
    with open(temp, "w", encoding="utf-8") as fh:
        fh.write(manifest.model_dump_json(indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, final)
    fsync_dir(final.parent)
    return final


def read_manifest(path: Path) -> Manifiesto:
    return Manifiesto.model_validate(json.loads(path.read_text(encoding="utf-8")))


def iter_manifests(directory: Path) -> Iterator[tuple[Path, Manifiesto]]:
    """Los manifiestos legibles del directorio (los dañados se ignoran: no describen nada)."""
    if not directory.exists():
        return
    for path in sorted(directory.glob(f"backup_*{MANIFEST_SUFFIX}")):
        try:
            yield path, read_manifest(path)
        except (ValueError, OSError):
            continue


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_gzip(path: Path) -> tuple[str, int]:
    """Lee el archivo entero: MD5 de lo comprimido y tamaño descomprimido; lanza si el gzip falla."""
    digest = hashlib.md5()
    inflater = zlib.decompressobj(wbits=31)
    total = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            while chunk:  # un gzip puede tener varios miembros seguidos
                if inflater.eof:
                    inflater = zlib.decompressobj(wbits=31)
                total += len(inflater.decompress(chunk))
                chunk = inflater.unused_data
    if not inflater.eof:
        raise zlib.error("el archivo gzip está truncado")
    return digest.hexdigest(), total


def iter_gzip(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
