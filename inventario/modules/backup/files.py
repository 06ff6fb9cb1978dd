"""Un archivo de backup por dentro: escritura atómica con MD5 y su lectura verificada.

Nada se escribe bajo su nombre final hasta estar completo, sincronizado en disco y con su MD5:
primero `<final>.parcial`, luego `fsync` y `rename`.

Comprime y descomprime con zlib-ng (`zlib_ng`): el mismo formato gzip que `gzip`/`gunzip`, con el
mismo significado de los niveles 1-9 (a nivel 6, ~0.4 % más grande que `gzip -6`), en menos de la
mitad de CPU. Lee igual los archivos escritos antes con el zlib de Python. Ver docs/benchmarks.md
("Ronda 2: compresión y latencia") para la comparación con zlib e ISA-L.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

from zlib_ng import gzip_ng, zlib_ng

from inventario.archivos import fsync_dir

TEMP_SUFFIX = ".parcial"
CHUNK = 1024 * 1024
# El stub de zlib_ng declara `error` como una instancia; es una clase (y no hereda de zlib.error).
ZlibNgError = cast(type[Exception], zlib_ng.error)
# Lo que lanza leer un gzip dañado o truncado, con el lector de hoy o el de antes.
CORRUPT_GZIP: tuple[type[Exception], ...] = (zlib.error, ZlibNgError, EOFError, gzip_ng.BadGzipFile)
UNREADABLE_GZIP: tuple[type[Exception], ...] = (*CORRUPT_GZIP, OSError)


def describe_gzip_error(exc: BaseException) -> str:
    """Por qué no se puede leer un gzip, en español (zlib y el sistema lo dicen en inglés)."""
    if isinstance(exc, EOFError):
        return "está cortado: termina antes del final del gzip"
    if isinstance(exc, gzip_ng.BadGzipFile):
        if "crc" in str(exc).lower() or "length" in str(exc).lower():
            return "el contenido no coincide con su suma de control: el archivo se modificó o se dañó"
        return "no es un archivo gzip"
    if isinstance(exc, OSError):  # BadGzipFile también es OSError: ya se vio arriba
        return f"no se pudo leer ({exc.strerror or exc.__class__.__name__})"
    return "los datos comprimidos no son válidos: el archivo se modificó o se dañó"


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
        # 0600 desde su creación, con cualquier umask: el backup lleva toda la base.
        self._raw = os.fdopen(os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self._hashing = _HashingFile(self._raw)
        # `level` es BACKUP_GZIP_NIVEL tal cual: zlib-ng usa la misma escala 1-9 que gzip.
        self._gz = gzip_ng.GzipFile(
            filename="", mode="wb", compresslevel=level, fileobj=self._hashing, mtime=0
        )
        self.uncompressed = 0
        self._syncing: threading.Thread | None = None
        self.md5 = ""
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._gz.write(data)
        self.uncompressed += len(data)

    def finish(self, sync: bool = True) -> None:
        """Cierra el gzip y asegura los bytes en disco (aún bajo el nombre temporal). Con
        `sync=False` el MD5 y el tamaño ya valen, y el `fsync` queda para `sync()` (en otro hilo,
        mientras se escribe el manifiesto)."""
        self._gz.close()
        self._raw.flush()
        self.md5 = self._hashing.md5.hexdigest()
        self.size = self._hashing.size
        if sync:
            self.sync()

    def sync(self) -> None:
        os.fsync(self._raw.fileno())
        self._raw.close()

    def sync_in_background(self) -> Callable[[], None]:
        """`sync()` en otro hilo; devuelve con qué esperarlo (relanza su fallo)."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.sync()
            except BaseException as exc:
                failure.append(exc)

        self._syncing = threading.Thread(target=run, name="backup-fsync", daemon=True)
        self._syncing.start()

        def wait() -> None:
            assert self._syncing is not None
            self._syncing.join()
            if failure:
                raise failure[0]

        return wait

    def commit(self, sync_dir: bool = True) -> None:
        os.replace(self.temp, self.final)
        if sync_dir:
            fsync_dir(self.final.parent)

    def abort(self) -> None:
        if self._syncing is not None:
            self._syncing.join()  # que no cierre el archivo mientras otro hilo lo sincroniza
        for closer in (self._gz.close, self._raw.close):
            try:
                closer()
            except Exception:
                pass
        self.temp.unlink(missing_ok=True)


def scan(fh: BinaryIO, *, inflate: bool) -> tuple[bytes, int | None]:
    """Lee el archivo abierto entero una vez: el MD5 (binario) de lo que hay en disco y, con `inflate`, el tamaño
    descomprimido (lanza `ZlibNgError` si el gzip está dañado o truncado). La única lectura que
    verifica un archivo de backup: descarga, email, `verificar` y restaurar pasan por aquí."""
    digest = hashlib.md5()
    inflater = zlib_ng.decompressobj(wbits=31)
    total = 0
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
        while inflate and chunk:  # un gzip puede tener varios miembros seguidos
            if inflater.eof:
                inflater = zlib_ng.decompressobj(wbits=31)
            total += len(inflater.decompress(chunk))
            chunk = inflater.unused_data
    if not inflate:
        return digest.digest(), None
    if not inflater.eof:
        raise ZlibNgError("el archivo gzip está truncado")
    return digest.digest(), total


def iter_gzip(path: Path) -> Iterator[bytes]:
    with gzip_ng.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk
