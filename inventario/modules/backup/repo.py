"""BackupRepo: el dueño del directorio de backups (`BACKUP_PATH`).

Todo lo que toca ese directorio pasa por aquí: nombres del plan, rutas (nunca del cliente),
manifiestos, encontrar un backup y su cadena, la verificación de MD5/gzip, "¿se puede usar?",
borrar y barrer temporales. Funciona sin base de datos: el directorio se describe solo.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

from inventario.archivos import fsync_dir
from inventario.errors import Conflicto, Desaparecido, NoDisponible, NoEncontrado
from inventario.modules.backup.exceptions import RestoreError
from inventario.modules.backup.files import (
    TEMP_SUFFIX,
    UNREADABLE_GZIP,
    AtomicGzipWriter,
    describe_gzip_error,
    scan,
)
from inventario.modules.backup.manifest import Manifiesto
from inventario.modules.backup.model import EstadoBackup, HistorialBackup, TipoBackup
from inventario.permisos import private_dir, write_private

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
# El sufijo de cada tipo en el nombre del archivo (`backup_AAAAMMDD_HHMMSS_FULL.sql.gz`).
SUFFIX = {TipoBackup.COMPLETO: "FULL", TipoBackup.DIFERENCIAL: "DIFF", TipoBackup.INCREMENTAL: "INCR"}
NAME_RE = re.compile(r"^backup_(\d{8})_(\d{6})_(" + "|".join(SUFFIX.values()) + r")\.sql\.gz$")
# MD5 ya comprobados por `BackupRepo.intact`, por versión del archivo.
_INTACT: dict[tuple[str, int, int, int, str | None], bool] = {}
# Una cadena más larga que esto es un ciclo entre manifiestos (o un directorio manipulado).
MAX_CHAIN = 10_000


class _LinkFacts(NamedTuple):
    id_backup: int
    hash_md5: str
    tamanio_bytes: int
    tipo: TipoBackup
    base: tuple[str | None, int | None, str | None]  # nombre, id y MD5 de su base


# Lo que `broken_chain` necesita de cada manifiesto, por versión del manifiesto (ruta, inodo, tamaño
# y ctime: se publica con un renombre, así que otra versión es otro inodo).
_LINK_FACTS: dict[tuple[str, int, int, int], _LinkFacts] = {}


def backup_name(moment: datetime, tipo: str) -> str:
    return f"backup_{moment:%Y%m%d_%H%M%S}_{SUFFIX[TipoBackup(tipo)]}.sql.gz"


def manifest_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name + MANIFEST_SUFFIX)


def read_manifest(path: Path) -> Manifiesto:
    return Manifiesto.model_validate_json(path.read_bytes())


@dataclass(frozen=True)
class Link:
    """Un archivo de backup con su manifiesto: un eslabón de una cadena de restauración."""

    path: Path
    manifest: Manifiesto


@dataclass(frozen=True)
class Punto:
    """Un punto de restauración: un backup y la cadena que hay que aplicar para llegar a él
    (vacía si no se puede: `problema` dice qué falta)."""

    link: Link
    chain: list[Link]
    problema: str | None = None

    @property
    def momento(self) -> datetime:
        return self.link.manifest.fecha_instantanea


@dataclass
class VerifiedFile:
    """Un archivo de backup abierto cuyo MD5 coincide con el del catálogo; se lee desde el principio."""

    fh: BinaryIO
    size: int
    md5: bytes

    @property
    def md5_hex(self) -> str:
        return self.md5.hex()


class BackupRepo:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # ------------------------------------------------------------------ nombres y rutas
    def ensure(self) -> None:
        # Solo quien escribe lo crea: una consulta o una descarga no deben crear directorios.
        # 0700: los backups llevan los hashes de las contraseñas (ver inventario/permisos.py).
        private_dir(self.directory)

    def path(self, nombre_archivo: str) -> Path:
        """Ruta en disco de un backup: siempre BACKUP_PATH + un nombre con el formato del plan."""
        if not NAME_RE.match(nombre_archivo):
            raise NoEncontrado(f"Nombre de backup inválido: {nombre_archivo!r}")
        return self.directory / nombre_archivo

    def exists(self, nombre_archivo: str) -> bool:
        return (self.directory / nombre_archivo).exists()

    def present(self, nombre_archivo: str, size: int | None) -> bool:
        """El archivo está en el directorio con el tamaño esperado (sin leerlo)."""
        try:
            path = self.path(nombre_archivo)
            return path.is_file() and path.stat().st_size == size
        except (OSError, NoEncontrado):
            return False

    def usable(self, row: HistorialBackup) -> bool:
        """Un backup del catálogo cuyo archivo se puede entregar o usar como base (no recalcula el MD5)."""
        return (
            row.estado == EstadoBackup.COMPLETADO
            and not row.eliminado
            and self.present(row.nombre_archivo, row.tamanio_bytes)
        )

    def intact(self, row: HistorialBackup) -> bool:
        """`usable` y además con el MD5 del catálogo: un archivo dañado con el mismo tamaño (un byte
        cambiado) no está disponible. El MD5 se calcula una vez por versión del archivo (inodo,
        tamaño y ctime, que nadie puede volver atrás) y se recuerda."""
        if not self.usable(row):
            return False
        path = self.directory / row.nombre_archivo
        try:
            st = path.stat()
            key = (str(path), st.st_ino, st.st_size, st.st_ctime_ns, row.hash_md5)
            if key not in _INTACT:
                with open(path, "rb") as fh:
                    digest, _ = scan(fh, inflate=False)
                if len(_INTACT) >= 1000:
                    _INTACT.clear()
                _INTACT[key] = digest.hex() == row.hash_md5
        except OSError:
            return False
        return _INTACT[key]

    # ------------------------------------------------------------------ escribir
    def writer(self, nombre_archivo: str, level: int) -> AtomicGzipWriter:
        return AtomicGzipWriter(self.path(nombre_archivo), level)

    def write_manifest(self, manifest: Manifiesto, *, sync_dir: bool = True) -> Path:
        final = manifest_path(self.path(manifest.nombre_archivo))
        temp = final.with_name(final.name + TEMP_SUFFIX)
        temp.unlink(missing_ok=True)
        try:
            write_private(temp, manifest.model_dump_json(indent=2).encode())
        except BaseException:
            # Disco lleno a mitad: ningún `.manifest.json.parcial` de 0 bytes queda hasta el próximo
            # arranque o `limpiar`.
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, final)
        if sync_dir:
            fsync_dir(final.parent)
        return final

    def publish(
        self, writer: AtomicGzipWriter, manifest: Manifiesto, data_synced: Callable[[], None]
    ) -> Path:
        """Publica un backup escrito (`writer.finish(sync=False)`): el manifiesto primero y los
        datos después, así un archivo final siempre tiene su manifiesto. `data_synced` espera al
        `fsync` de los datos, que corre en otro hilo mientras se escribe el manifiesto. Un solo
        `fsync` del directorio para los dos renombres: el diario de ext4/xfs los conserva en orden,
        así que tras un corte queda nada, solo el manifiesto (lo barre `sweep_temporaries`) o ambos."""
        final = self.write_manifest(manifest, sync_dir=False)
        data_synced()
        writer.commit(sync_dir=False)
        fsync_dir(self.directory)
        return final

    # ------------------------------------------------------------------ manifiestos
    def manifest(self, nombre_archivo: str) -> Manifiesto | None:
        """El manifiesto de un archivo, o None si falta o no se puede leer."""
        try:
            return read_manifest(manifest_path(self.path(nombre_archivo)))
        except (OSError, ValueError, NoEncontrado):
            return None

    def manifests(self) -> Iterator[tuple[Path, Manifiesto]]:
        """Los manifiestos legibles del directorio (los dañados se ignoran: no describen nada)."""
        if not self.directory.exists():
            return
        for path in sorted(self.directory.glob(f"backup_*{MANIFEST_SUFFIX}")):
            try:
                yield path, read_manifest(path)
            except (ValueError, OSError):
                continue

    def published(self) -> Iterator[Link]:
        """Cada archivo con su manifiesto y el tamaño que este dice (lo que el catálogo debe conocer)."""
        for _, manifest in self.manifests():
            if self.present(manifest.nombre_archivo, manifest.tamanio_bytes):
                yield Link(self.directory / manifest.nombre_archivo, manifest)

    # ------------------------------------------------------------------ encontrar
    def find(self, key: str) -> Link:
        """Un backup por id (`7`) o por archivo (nombre o ruta)."""
        if key.isdigit():
            for mpath, manifest in self.manifests():
                if manifest.id_backup == int(key):
                    data = mpath.with_name(mpath.name.removesuffix(MANIFEST_SUFFIX))
                    if not data.exists():
                        raise RestoreError(
                            f"Falta el archivo {data.name} del backup {key}: su manifiesto está, el "
                            "archivo no (se borró o se movió)."
                        )
                    return Link(data, manifest)
            raise RestoreError(
                f"No hay en {self.directory} ningún backup con id {key} (ni su archivo ni su manifiesto)."
            )
        path = Path(key)
        if NAME_RE.match(key) or (not path.is_absolute() and not path.exists()):
            # Un nombre de backup a secas es el de BACKUP_PATH, nunca uno del directorio actual con
            # el mismo nombre; una ruta (con carpeta) se usa tal cual.
            path = self.directory / key
        if not path.exists():
            raise RestoreError(f"No existe el archivo {path}.")
        mpath = manifest_path(path)
        if not mpath.exists():
            raise RestoreError(
                f"Falta el manifiesto {mpath.name} junto a {path.name}: sin él no se puede saber qué contiene. "
                "Para restaurar a mano: gunzip -c ARCHIVO | psql -d BASE"
            )
        try:
            return Link(path, read_manifest(mpath))
        except (ValueError, OSError) as exc:
            raise RestoreError(f"El manifiesto {mpath.name} está dañado: {exc}") from None

    def chain(self, key: str) -> list[Link]:
        """Lo que hay que aplicar, en orden, para restaurar `key`: desde su COMPLETO hasta él.

        Cada eslabón que no es un completo nombra su base en el manifiesto (`nombre_archivo_base`,
        `id_backup_base`, `hash_md5_base`); se sigue hacia atrás hasta llegar a un completo. Hoy:
        [completo], [completo, diferencial], [completo, incremental...] o
        [completo, diferencial, incremental...].
        """
        links = [self.find(key)]
        while links[0].manifest.tipo != TipoBackup.COMPLETO:
            if len(links) > MAX_CHAIN:
                raise RestoreError(f"La cadena de {links[-1].path.name} no termina en un completo.")
            links.insert(0, self._base_of(links[0]))
        return links

    def _base_of(self, link: Link) -> Link:
        base_name = link.manifest.nombre_archivo_base
        if not base_name or not NAME_RE.match(base_name):
            raise RestoreError(f"El manifiesto de {link.path.name} no nombra su backup base.")
        for folder in dict.fromkeys((link.path.parent, self.directory)):
            candidate = folder / base_name
            if candidate.exists() and manifest_path(candidate).exists():
                base = Link(candidate, read_manifest(manifest_path(candidate)))
                if (
                    base.manifest.id_backup != link.manifest.id_backup_base
                    or base.manifest.hash_md5 != link.manifest.hash_md5_base
                ):
                    raise RestoreError(
                        f"El backup {base_name} no es el que usó {link.path.name} (id o MD5 distintos)."
                    )
                return base
        raise RestoreError(_missing_base(base_name, link.path.name))

    def broken_chain(self, manifest: Manifiesto) -> str | None:
        """Por qué la cadena de `manifest` (un backup de este directorio) ya no se restauraría: un
        archivo o manifiesto que falta, un archivo con otro tamaño que el de su manifiesto, o una
        base que no es la que usó su sucesor. None si está entera hasta su completo.

        Sin leer los datos (el MD5 de cada archivo se comprueba al restaurar): un `stat` por
        eslabón y cada manifiesto leído una vez por versión. Corre antes de cada incremental, y la
        cadena de un día tiene ~100 eslabones."""
        name, tipo = manifest.nombre_archivo, manifest.tipo
        base = (manifest.nombre_archivo_base, manifest.id_backup_base, manifest.hash_md5_base)
        for _ in range(MAX_CHAIN):
            if tipo == TipoBackup.COMPLETO:
                return None
            base_name, base_id, base_md5 = base
            if not base_name or not NAME_RE.match(base_name):
                return f"el manifiesto de {name} no nombra su backup base"
            facts = self._link_facts(base_name)
            if facts is None:
                return f"falta el archivo {base_name} (o su manifiesto), que {name} necesita"
            if (facts.id_backup, facts.hash_md5) != (base_id, base_md5):
                return f"el backup {base_name} no es el que usó {name} (id o MD5 distintos)"
            try:
                if (self.directory / base_name).stat().st_size != facts.tamanio_bytes:
                    return f"el archivo {base_name} no tiene el tamaño que dice su manifiesto"
            except OSError:
                return f"falta el archivo {base_name}, que {name} necesita"
            name, tipo, base = base_name, facts.tipo, facts.base
        return f"la cadena de {manifest.nombre_archivo} no termina en un completo"

    def _link_facts(self, nombre_archivo: str) -> _LinkFacts | None:
        mpath = manifest_path(self.directory / nombre_archivo)
        try:
            st = mpath.stat()
            key = (str(mpath), st.st_ino, st.st_size, st.st_ctime_ns)
            facts = _LINK_FACTS.get(key)
            if facts is None:
                m = read_manifest(mpath)
                facts = _LinkFacts(
                    m.id_backup,
                    m.hash_md5,
                    m.tamanio_bytes,
                    m.tipo,
                    (m.nombre_archivo_base, m.id_backup_base, m.hash_md5_base),
                )
                if len(_LINK_FACTS) >= 5000:
                    _LINK_FACTS.clear()
                _LINK_FACTS[key] = facts
        except (OSError, ValueError):
            return None
        return facts

    # ------------------------------------------------------------------ puntos de restauración
    def points(self) -> list[Punto]:
        """Cada backup publicado como punto de restauración, del más antiguo al más nuevo, con su
        cadena resuelta en memoria (los manifiestos se leen una vez)."""
        links = {link.path.name: link for link in self.published()}
        result = []
        for link in links.values():
            chain, problema = [link], None
            while chain[0].manifest.tipo != TipoBackup.COMPLETO:
                head = chain[0].manifest
                base = links.get(head.nombre_archivo_base or "")
                if base is None:
                    problema = _missing_base(head.nombre_archivo_base or "?", head.nombre_archivo)
                elif (base.manifest.id_backup, base.manifest.hash_md5) != (
                    head.id_backup_base,
                    head.hash_md5_base,
                ):
                    problema = f"El backup {base.path.name} no es el que usó {head.nombre_archivo} (id o MD5 distintos)."
                elif len(chain) > MAX_CHAIN:
                    problema = f"La cadena de {link.path.name} no termina en un completo."
                if problema:
                    break
                assert base is not None
                chain.insert(0, base)
            result.append(Punto(link, [] if problema else chain, problema))
        return sorted(result, key=lambda p: (p.momento, p.link.manifest.id_backup))

    def point_at(self, moment: datetime) -> Punto:
        """El punto más reciente cuyo estado es de `moment` o anterior. RestoreError si no hay, o si
        su cadena está incompleta (dice cuál es el último punto completo antes)."""
        points = [p for p in self.points() if p.momento <= moment]
        if not points:
            raise RestoreError(
                f"No hay en {self.directory} ningún backup con el estado de la base al {moment:%Y-%m-%d %H:%M} "
                "o antes."
            )
        point = points[-1]
        if point.problema:
            complete = [p for p in points if not p.problema]
            hint = (
                f" El punto completo más reciente antes es el backup {complete[-1].link.manifest.id_backup} "
                f"({complete[-1].link.path.name}, {complete[-1].momento:%Y-%m-%d %H:%M:%S})."
                if complete
                else ""
            )
            raise RestoreError(
                f"El punto más reciente hasta esa hora, {point.link.path.name}, no se puede restaurar: "
                f"{point.problema}{hint}"
            )
        return point

    # ------------------------------------------------------------------ verificar
    def verify(self, link: Link) -> None:
        """MD5 y gzip íntegros, leyendo el archivo entero. Lanza RestoreError si algo no cuadra."""
        if not link.path.exists():
            raise RestoreError(f"Falta el archivo {link.path}.")
        try:
            with open(link.path, "rb") as fh:
                digest, size = scan(fh, inflate=True)
        except UNREADABLE_GZIP as exc:
            raise RestoreError(
                f"{link.path.name}: el gzip está dañado ({describe_gzip_error(exc)})."
            ) from None
        md5 = digest.hex()
        if md5 != link.manifest.hash_md5:
            raise RestoreError(
                f"{link.path.name}: el MD5 no coincide (esperado {link.manifest.hash_md5}, calculado {md5}). "
                "El archivo está dañado o fue modificado; no se usará."
            )
        if size != link.manifest.tamanio_sin_comprimir:
            raise RestoreError(f"{link.path.name}: el tamaño descomprimido no coincide con el manifiesto.")

    def deliverable(self, row: HistorialBackup) -> Path:
        """La ruta de un backup del catálogo que se puede entregar (sin tocar el disco); si no,
        410 (eliminado por la retención) o 409 (en proceso, con error, sin MD5)."""
        ident = f"El backup {row.id_backup} ({row.nombre_archivo})"
        if row.eliminado:
            cuando = f" el {row.fecha_eliminacion:%Y-%m-%d %H:%M}" if row.fecha_eliminacion else ""
            raise Desaparecido(
                f"{ident} fue eliminado{cuando} por la política de retención: su archivo ya no existe"
            )
        if row.estado == EstadoBackup.EN_PROCESO:
            raise Conflicto(
                f"{ident} aún está en proceso: espere a que termine "
                f"(consulte GET /api/v1/backup/{row.id_backup})"
            )
        if row.estado != EstadoBackup.COMPLETADO:
            raise Conflicto(
                f"{ident} terminó con error y no tiene archivo: {row.mensaje_error or 'sin detalle'}"
            )
        if not row.hash_md5:
            raise Conflicto(f"{ident} no tiene MD5 en el catálogo: no se puede verificar el archivo")
        return self.path(row.nombre_archivo)

    def open_verified(self, row: HistorialBackup) -> VerifiedFile:
        """El archivo de `deliverable`, abierto y con su tamaño y MD5 comprobados contra el catálogo
        (409 si no coinciden, 410 si ya no está)."""
        path = self.deliverable(row)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise Desaparecido(
                f"El archivo {row.nombre_archivo} del backup {row.id_backup} ya no está en el directorio "
                "de backups (se borró o movió fuera del sistema)"
            ) from None
        except OSError as exc:
            raise NoDisponible(
                f"No se pudo leer el archivo {row.nombre_archivo}: {exc.strerror or exc}"
            ) from None
        try:
            size = os.fstat(fh.fileno()).st_size
            if size != row.tamanio_bytes:
                raise Conflicto(
                    f"El archivo está dañado: mide {size} bytes y el catálogo dice {row.tamanio_bytes} "
                    f"(backup {row.id_backup}, {row.nombre_archivo})"
                )
            digest, _ = scan(fh, inflate=False)
            if digest.hex() != row.hash_md5:
                raise Conflicto(
                    f"El archivo está dañado: MD5 no coincide (catálogo {row.hash_md5}, archivo "
                    f"{digest.hex()}; backup {row.id_backup}, {row.nombre_archivo})"
                )
            fh.seek(0)
        except BaseException:
            fh.close()
            raise
        return VerifiedFile(fh, size, digest)

    # ------------------------------------------------------------------ borrar
    def remove(self, nombre_archivo: str) -> int:
        """Borra el archivo y su manifiesto; devuelve los bytes liberados. Un nombre ajeno al plan no se toca."""
        if not NAME_RE.match(nombre_archivo):
            return 0
        path = self.directory / nombre_archivo
        freed = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
        manifest_path(path).unlink(missing_ok=True)
        return freed

    def discard(self, writer: AtomicGzipWriter, manifest_written: Path | None) -> None:
        """Deshace un backup a medio escribir: sin temporal, y sin manifiesto si el archivo no llegó."""
        writer.abort()
        if manifest_written is not None and not writer.final.exists():
            manifest_written.unlink(missing_ok=True)

    def sweep_temporaries(self) -> list[str]:
        """Restos de backups interrumpidos: `.parcial` y manifiestos sin su archivo."""
        removed = []
        for path in self.directory.glob(f"backup_*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)
            removed.append(path.name)
        # Un manifiesto sin su archivo describe algo que no llegó a publicarse (o ya se borró).
        for path in self.directory.glob(f"backup_*{MANIFEST_SUFFIX}"):
            data = path.with_name(path.name.removesuffix(MANIFEST_SUFFIX))
            if not data.exists():
                path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed


def _missing_base(base_name: str, name: str) -> str:
    return (
        f"Falta el backup base {base_name} de {name} (o su manifiesto): un diferencial o incremental "
        "solo se aplica sobre su base, en orden."
    )
