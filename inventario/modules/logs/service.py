"""Mantenimiento de logs: comprimir los rotados y borrar los comprimidos viejos. Sin HTTP.

Solo toca archivos **rotados** de las cuatro familias del plan y de `acceso.log` (`app.log.2025-11-25`,
`error.log.2025-11-25.1`, `health.log.3`...); nunca `app.log`, `error.log`, `health.log` ni
`sesiones.log`, que son los que se están escribiendo, ni archivos con otros nombres.

Ventanas (edad = días desde la fecha del nombre; sin fecha en el nombre, desde la modificación):

| Familia        | Se comprime con más de                    | El `.gz` se borra con más de |
|----------------|-------------------------------------------|------------------------------|
| `app.log`      | LOGS_COMPRESSION_DAYS (7)                 | LOGS_RETENTION_DAYS (90)     |
| `error.log`    | max(LOGS_COMPRESSION_DAYS, 10)            | LOGS_RETENTION_DAYS          |
| `health.log`   | max(LOGS_COMPRESSION_DAYS, 14)            | LOGS_RETENTION_DAYS          |
| `sesiones.log` | max(LOGS_COMPRESSION_DAYS, 30)            | LOGS_RETENTION_DAYS          |
| `acceso.log`   | LOGS_COMPRESSION_DAYS                     | LOGS_RETENTION_DAYS          |

Un rotado que ya pasó LOGS_RETENTION_DAYS sin comprimirse (p. ej. porque la compresión estuvo
apagada) se borra sin comprimir, con la compresión habilitada: su `.gz` se borraría enseguida. Con
LOGS_COMPRESSION_ENABLED=false los rotados sin comprimir no se tocan; la retención de los `.gz` sigue.

Los 10/14/30 días son la columna "Retención" de la tabla de logs del plan: esas familias se
conservan más tiempo como texto plano (se consultan a menudo: errores recientes, chequeos de
salud, auditoría de sesiones).

Nada se pierde si el proceso muere a mitad: cada `.gz` se escribe como `ARCHIVO.gz.parcial`, se
sincroniza en disco, se verifica (descomprimido, mismo CRC y tamaño que el original) y se renombra a
`ARCHIVO.gz`; el original se borra solo después de sincronizar el directorio. Una corrida siguiente
termina lo que una caída dejó: borra los `.parcial` (y rehace esa compresión) y, si quedaron
`ARCHIVO` y `ARCHIVO.gz`, comprueba que el `.gz` esté completo e igual al original antes de borrar
el original. Primero se borran los `.gz` vencidos (libera espacio), luego se comprime.
"""

from __future__ import annotations

import fcntl
import gzip
import logging
import os
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from inventario.archivos import fsync_dir, human_size
from inventario.config import Settings
from inventario.errors import Conflicto, cantidad
from inventario.logging_setup import LOG_FILES

log = logging.getLogger(__name__)

# Días que cada familia se conserva como texto plano según el plan (app.log usa LOGS_COMPRESSION_DAYS).
DIAS_TEXTO_PLANO = {
    "app.log": 0,
    "error.log": 10,
    "health.log": 14,
    "sesiones.log": 30,
    "acceso.log": 0,  # como app.log
}
GZ = ".gz"
TEMP_SUFFIX = ".gz.parcial"
LOCK_NAME = ".mantenimiento.lock"
GZIP_LEVEL = 6
CHUNK = 1024 * 1024
# Un rotado modificado hace menos de esto aún puede estar recibiendo líneas (otro proceso que no
# se enteró de la rotación): no se comprime esta vez.
QUIET = timedelta(hours=1)

_FAMILIES = "|".join(re.escape(name) for name in LOG_FILES)
_ROTATED_RE = re.compile(rf"^(?P<familia>{_FAMILIES})\.(?:(?P<fecha>\d{{4}}-\d{{2}}-\d{{2}})(?:\.\d+)?|\d+)$")

assert set(DIAS_TEXTO_PLANO) == set(LOG_FILES)


class MantenimientoEnCurso(Conflicto):
    def __init__(self, directory: Path) -> None:
        super().__init__(f"Ya hay un mantenimiento de logs en curso en {directory}")


@dataclass
class ResultadoLogs:
    directorio: str
    comprimidos: list[str] = field(default_factory=list)
    bytes_originales: int = 0  # lo que ocupaban los comprimidos antes
    bytes_comprimidos: int = 0  # lo que ocupan ahora
    eliminados: list[str] = field(default_factory=list)
    bytes_eliminados: int = 0
    temporales_borrados: list[str] = field(default_factory=list)
    # Originales que una caída dejó junto a su .gz ya completo: borrados tras verificarlo.
    recuperados: list[str] = field(default_factory=list)
    en_uso: list[str] = field(default_factory=list)
    errores: list[str] = field(default_factory=list)
    compresion_habilitada: bool = True
    segundos: float = 0.0

    @property
    def bytes_ahorrados(self) -> int:
        return self.bytes_originales - self.bytes_comprimidos

    def resumen(self) -> str:
        partes = [
            f"{cantidad(len(self.comprimidos), 'archivo comprimido', 'archivos comprimidos')} "
            f"({human_size(self.bytes_ahorrados)} ahorrados)"
            if self.compresion_habilitada
            else "compresión deshabilitada (LOGS_COMPRESSION_ENABLED=false)",
            f"{cantidad(len(self.eliminados), 'comprimido eliminado', 'comprimidos eliminados')} "
            f"({human_size(self.bytes_eliminados)} liberados)",
        ]
        if self.recuperados:
            partes.append(
                cantidad(
                    len(self.recuperados),
                    "compresión interrumpida completada",
                    "compresiones interrumpidas completadas",
                )
            )
        if self.temporales_borrados:
            partes.append(cantidad(len(self.temporales_borrados), "temporal borrado", "temporales borrados"))
        if self.en_uso:
            partes.append(
                f"{cantidad(len(self.en_uso), 'omitido', 'omitidos')} por estar en uso ({', '.join(self.en_uso[:5])})"
            )
        if self.errores:
            partes.append(
                f"{cantidad(len(self.errores), 'error', 'errores')}: " + "; ".join(self.errores[:5])
            )
        return f"Logs en {self.directorio}: " + ", ".join(partes) + f" ({self.segundos:.2f} s)"


@dataclass
class _Entry:
    path: Path
    familia: str
    size: int
    mtime: float
    fecha: date | None  # la del nombre

    def age_days(self, today: date, tz: tzinfo) -> int:
        day = self.fecha or datetime.fromtimestamp(self.mtime, tz).date()
        return (today - day).days


def compression_days(settings: Settings, familia: str) -> int:
    return max(settings.LOGS_COMPRESSION_DAYS, DIAS_TEXTO_PLANO[familia])


def _parse(base: str) -> tuple[str, date | None] | None:
    match = _ROTATED_RE.match(base)
    if not match:
        return None
    fecha = None
    if match["fecha"]:
        try:
            fecha = date.fromisoformat(match["fecha"])
        except ValueError:
            return None
    return match["familia"], fecha


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Un solo mantenimiento a la vez por carpeta de logs (aunque lo pidan dos procesos)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MantenimientoEnCurso(directory) from None
        yield
    finally:
        os.close(fd)


def _crc_of_plain(path: Path) -> tuple[int, int]:
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return crc, size


def _crc_of_gzip(path: Path) -> tuple[int, int]:
    """CRC y tamaño del contenido descomprimido; falla si el .gz está truncado o dañado."""
    crc, size = 0, 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return crc, size


def _write_gzip(src: Path, tmp: Path, mtime: float) -> tuple[int, int]:
    crc, size = 0, 0
    # 0600 como el log que comprime (open() usaría el umask del proceso).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as raw:
        with gzip.GzipFile(
            filename=src.name, mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=int(mtime)
        ) as gz:
            while chunk := fin.read(CHUNK):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                gz.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())
    return crc, size


def _scan(directory: Path) -> tuple[dict[str, _Entry], dict[str, _Entry], list[Path]]:
    """(rotados sin comprimir, comprimidos, temporales), por nombre base (sin `.gz`)."""
    plain: dict[str, _Entry] = {}
    gz: dict[str, _Entry] = {}
    temps: list[Path] = []
    with os.scandir(directory) as it:
        for item in it:
            if not item.is_file(follow_symlinks=False):
                continue
            name = item.name
            if name.endswith(TEMP_SUFFIX):
                if _parse(name[: -len(TEMP_SUFFIX)]):
                    temps.append(Path(item.path))
                continue
            target, base = (gz, name[: -len(GZ)]) if name.endswith(GZ) else (plain, name)
            parsed = _parse(base)
            if parsed is None:
                continue  # un archivo activo (app.log...) u otro ajeno: no se toca
            st = item.stat(follow_symlinks=False)
            target[base] = _Entry(Path(item.path), parsed[0], st.st_size, st.st_mtime, parsed[1])
    return plain, gz, temps


def maintain(settings: Settings, now: datetime | None = None) -> ResultadoLogs:
    """Una pasada completa sobre LOGS_PATH. Idempotente; `now` inyectable para las pruebas."""
    started = time.perf_counter()
    tz = settings.tz
    now = now or datetime.now(tz)
    today = now.astimezone(tz).date()
    directory = settings.logs_dir
    result = ResultadoLogs(str(directory), compresion_habilitada=settings.LOGS_COMPRESSION_ENABLED)
    if not directory.is_dir():
        return result
    with _exclusive(directory):
        plain, gz, temps = _scan(directory)

        # 1. Temporales de una corrida que murió: se borran; su original sigue ahí y se rehace.
        for tmp in temps:
            try:
                tmp.unlink(missing_ok=True)
                result.temporales_borrados.append(tmp.name)
            except OSError as exc:
                result.errores.append(f"{tmp.name}: {exc.strerror or exc}")

        # 2. Original y .gz a la vez: la caída fue entre el renombrado y el borrado del original.
        for base in sorted(set(plain) & set(gz)):
            original, packed = plain.pop(base), gz[base]
            try:
                same = _crc_of_plain(original.path) == _crc_of_gzip(packed.path)
            except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
                same = None  # .gz dañado o truncado
            try:
                if same:
                    original.path.unlink()
                    result.recuperados.append(original.path.name)
                elif same is None:
                    # No es una compresión nuestra completa: se descarta y se rehace abajo.
                    packed.path.unlink()
                    del gz[base]
                    plain[base] = original
                    log.warning("Logs: %s estaba dañado; se vuelve a comprimir %s", packed.path.name, base)
                else:
                    result.errores.append(
                        f"{base} y {packed.path.name} tienen contenidos distintos; se conservan ambos"
                    )
            except OSError as exc:
                result.errores.append(f"{base}: {exc.strerror or exc}")

        # 3. Comprimidos más viejos que la retención.
        for _base, entry in sorted(gz.items()):
            if entry.age_days(today, tz) <= settings.LOGS_RETENTION_DAYS:
                continue
            try:
                entry.path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                result.errores.append(f"{entry.path.name}: {exc.strerror or exc}")
                continue
            result.eliminados.append(entry.path.name)
            result.bytes_eliminados += entry.size

        # 4. Rotados más viejos que su ventana → .gz (los originales se borran al final, juntos).
        done: list[tuple[_Entry, int, int]] = []
        if settings.LOGS_COMPRESSION_ENABLED:
            quiet_limit = now.timestamp() - QUIET.total_seconds()
            for base, entry in sorted(plain.items()):
                age = entry.age_days(today, tz)
                if age <= compression_days(settings, entry.familia):
                    continue
                if age > settings.LOGS_RETENTION_DAYS:
                    # Ya pasó la retención sin comprimirse (p. ej. la compresión estuvo apagada):
                    # su .gz se borraría en la misma pasada; se borra sin comprimir.
                    try:
                        entry.path.unlink()
                    except OSError as exc:
                        result.errores.append(f"{base}: {exc.strerror or exc}")
                        continue
                    result.eliminados.append(base)
                    result.bytes_eliminados += entry.size
                    continue
                if entry.mtime > quiet_limit:
                    result.en_uso.append(base)
                    continue
                packed_path = entry.path.with_name(base + GZ)
                tmp = entry.path.with_name(base + TEMP_SUFFIX)
                try:
                    before = entry.path.stat()
                    crc_size = _write_gzip(entry.path, tmp, before.st_mtime)
                    if _crc_of_gzip(tmp) != crc_size:
                        raise OSError(f"la verificación de {tmp.name} no coincide con el original")
                    after = entry.path.stat()
                    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                        tmp.unlink(missing_ok=True)
                        result.en_uso.append(base)
                        continue
                    os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
                    os.replace(tmp, packed_path)
                except (OSError, zlib.error, EOFError) as exc:
                    tmp.unlink(missing_ok=True)
                    result.errores.append(f"{base}: {getattr(exc, 'strerror', None) or exc}")
                    continue
                done.append((entry, before.st_size, packed_path.stat().st_size))
            if done:
                # Los renombrados quedan firmes en disco antes de borrar ningún original.
                fsync_dir(directory)
                for entry, size, packed_size in done:
                    try:
                        entry.path.unlink()
                    except OSError as exc:
                        result.errores.append(f"{entry.path.name}: {exc.strerror or exc}")
                        continue
                    result.comprimidos.append(entry.path.name)
                    result.bytes_originales += size
                    result.bytes_comprimidos += packed_size
        if done or result.eliminados or result.recuperados or result.temporales_borrados:
            fsync_dir(directory)
    result.segundos = time.perf_counter() - started
    level = logging.WARNING if result.errores else logging.INFO
    log.log(
        level,
        "Mantenimiento de logs: %s comprimidos (%s bytes → %s, %s ahorrados), %s eliminados (%s bytes), "
        "%s recuperados, %s temporales, %s en uso, %s errores en %.2f s",
        len(result.comprimidos),
        result.bytes_originales,
        result.bytes_comprimidos,
        result.bytes_ahorrados,
        len(result.eliminados),
        result.bytes_eliminados,
        len(result.recuperados),
        len(result.temporales_borrados),
        len(result.en_uso),
        len(result.errores),
        result.segundos,
    )
    for error in result.errores:
        log.error("Mantenimiento de logs: %s", error)
    return result


__all__ = ["DIAS_TEXTO_PLANO", "MantenimientoEnCurso", "ResultadoLogs", "compression_days", "maintain"]
