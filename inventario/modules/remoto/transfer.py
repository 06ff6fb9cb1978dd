"""Subir, listar, verificar y bajar copias fuera del sitio (sin base de datos: el remoto se describe solo).

Cada backup deja tres objetos en el remoto:
- `ARCHIVO.sql.gz.age`: el archivo de backup cifrado (`ARCHIVO.sql.gz` si no hay destinatarios);
- `ARCHIVO.sql.gz.manifest.json.age`: su manifiesto, cifrado (filas, claves y esquema van dentro);
- `ARCHIVO.sql.gz.remoto.json`: el descriptor en claro, con solo lo que hace falta sin la clave
  (nombre, tipo, fecha, base, y tamaño y sumas de los objetos cifrados). Se sube el último: un objeto
  sin descriptor es una subida a medias y no se usa.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ValidationError
from pyrage import x25519

from inventario.modules.backup.repo import NAME_RE, SUFFIX
from inventario.modules.remoto.cifrado import (
    AGE_SUFFIX,
    CifradoError,
    HashingWriter,
    decrypt_stream,
    encrypt_hashing,
    encrypt_stream,
)
from inventario.modules.remoto.rclone import Rclone, RemoteObject, RemotoError

DESCRIPTOR_SUFFIX = ".remoto.json"
MANIFEST_SUFFIX = ".manifest.json"
FORMATO_DESCRIPTOR = 1
PARTIAL = ".parcial"
MAX_ID = 2**63 - 2  # historial_backup.id_backup es bigint: un id mayor no cabe en la secuencia
_HEX = {"md5": 32, "sha256": 64}


class ObjetoRemoto(BaseModel):
    nombre: str
    tamanio_bytes: int
    md5: str
    sha256: str


class Descriptor(BaseModel):
    """Lo que el remoto sabe de un backup sin la clave. Es un formato en el remoto: no se renombra."""

    formato: int = FORMATO_DESCRIPTOR
    id_backup: int
    tipo: str
    nombre_archivo: str
    fecha_creacion: datetime
    id_backup_base: int | None = None
    nombre_archivo_base: str | None = None
    # El estado de la base que recupera (añadido después: los descriptores viejos no lo tienen).
    fecha_instantanea: datetime | None = None
    cifrado: bool
    datos: ObjetoRemoto
    manifiesto: ObjetoRemoto

    @property
    def nombre_descriptor(self) -> str:
        return self.nombre_archivo + DESCRIPTOR_SUFFIX

    @property
    def objetos(self) -> list[str]:
        return [self.datos.nombre, self.manifiesto.nombre, self.nombre_descriptor]


def data_object_name(nombre_archivo: str, cifrado: bool) -> str:
    return nombre_archivo + (AGE_SUFFIX if cifrado else "")


def manifest_object_name(nombre_archivo: str, cifrado: bool) -> str:
    return nombre_archivo + MANIFEST_SUFFIX + (AGE_SUFFIX if cifrado else "")


def descriptor_problem(desc: Descriptor) -> str | None:
    """Por qué un descriptor no es uno que esta aplicación pudo subir (None si lo es).

    El descriptor viaja en claro y cualquiera con escritura en el remoto puede dejar uno: los nombres
    de sus objetos se usan como rutas al bajarlos, así que solo valen los que `push` deriva del nombre
    del backup (nada de rutas, `..` ni nombres de otros archivos)."""
    match = NAME_RE.match(desc.nombre_archivo)
    if not match:
        return f"nombre de backup no válido: {desc.nombre_archivo!r}"
    suffix = {str(tipo): value for tipo, value in SUFFIX.items()}.get(desc.tipo)
    if suffix is None:
        return f"tipo no válido: {desc.tipo!r}"
    if match.group(3) != suffix:
        return f"el tipo {desc.tipo} no corresponde al nombre {desc.nombre_archivo}"
    if not 1 <= desc.id_backup <= MAX_ID:
        return f"id_backup fuera de rango: {desc.id_backup}"
    if desc.tipo == "COMPLETO":
        if desc.id_backup_base is not None or desc.nombre_archivo_base is not None:
            return "un completo no tiene base"
    elif desc.nombre_archivo_base is None or not NAME_RE.match(desc.nombre_archivo_base):
        return f"nombre de la base no válido: {desc.nombre_archivo_base!r}"
    elif desc.id_backup_base is None or not 1 <= desc.id_backup_base <= MAX_ID:
        return f"id de la base no válido: {desc.id_backup_base}"
    for moment in (desc.fecha_creacion, desc.fecha_instantanea):
        if moment is not None and moment.utcoffset() is None:
            return "fecha sin zona horaria"
    expected = {
        "datos": data_object_name(desc.nombre_archivo, desc.cifrado),
        "manifiesto": manifest_object_name(desc.nombre_archivo, desc.cifrado),
    }
    for field, obj in (("datos", desc.datos), ("manifiesto", desc.manifiesto)):
        if obj.nombre != expected[field]:
            return f"el objeto de {field} debe llamarse {expected[field]!r}, no {obj.nombre!r}"
        if obj.tamanio_bytes < 0:
            return f"tamaño negativo en {obj.nombre}"
        for algo, length in _HEX.items():
            value = getattr(obj, algo)
            if len(value) != length or value.strip("0123456789abcdef"):
                return f"suma {algo} no válida en {obj.nombre}"
    return None


def _hash_file(path: Path) -> tuple[int, str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest(), sha.hexdigest()


class _HashingReader:
    """Lee de un archivo y calcula el MD5 de lo leído (el archivo local se verifica al cifrarlo)."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.md5 = hashlib.md5()

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(size)
        self.md5.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        n = self.source.readinto(buffer)  # type: ignore[attr-defined]  # la fuente es un archivo binario (tiene readinto)
        self.md5.update(memoryview(buffer)[:n])
        return int(n)


def _check_local(path: Path, md5: str, expected: str | None) -> None:
    if expected and md5 != expected:
        raise RemotoError(
            f"El archivo local {path.name} no coincide con su MD5 del catálogo (esperado {expected}, "
            f"calculado {md5}): está dañado y no se copia fuera del sitio."
        )


def _check_uploaded(found: RemoteObject | None, obj: ObjetoRemoto) -> None:
    """Tamaño y (si el remoto la conoce) suma MD5 del objeto subido contra lo que se envió."""
    if found is None:
        raise RemotoError(f"{obj.nombre} no aparece en el remoto después de subirlo")
    if found.size != obj.tamanio_bytes:
        raise RemotoError(
            f"{obj.nombre}: el remoto guarda {found.size} bytes y se enviaron {obj.tamanio_bytes}"
        )
    if found.md5 and found.md5.lower() != obj.md5:
        raise RemotoError(
            f"{obj.nombre}: la suma MD5 del remoto ({found.md5}) no es la de lo enviado ({obj.md5})"
        )


def push(
    rclone: Rclone,
    data_file: Path,
    manifest_json: bytes,
    public: dict[str, object],
    recipients: list[x25519.Recipient] | None,
    workdir: Path,
    expected_md5: str | None = None,
) -> Descriptor:
    """Cifra (si hay destinatarios), sube y verifica un backup y su manifiesto; el descriptor, al final.

    `public` son los campos en claro del descriptor (id_backup, tipo, nombre_archivo, fecha_creacion,
    id_backup_base, nombre_archivo_base). Lo que se sube se prepara en una carpeta temporal dentro de
    `workdir` (misma máquina que el backup): así rclone conoce tamaño y MD5 antes de subir, puede
    reintentar un archivo, y archivo y manifiesto suben en una sola llamada (y se verifican en otra).
    `expected_md5` (el del catálogo): el archivo local se comprueba al leerlo; dañado, no sale.
    """
    name = data_file.name
    staging = workdir / (name + ".subida")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if recipients:
            datos_name = data_object_name(name, True)
            with open(data_file, "rb") as src, open(staging / datos_name, "wb") as raw:
                reader = _HashingReader(src)
                writer = encrypt_hashing(reader, raw, recipients)  # type: ignore[arg-type]  # el lector cumple el protocolo de archivo
            _check_local(data_file, reader.md5.hexdigest(), expected_md5)
            datos = ObjetoRemoto(
                nombre=datos_name,
                tamanio_bytes=writer.size,
                md5=writer.md5.hexdigest(),
                sha256=writer.sha256.hexdigest(),
            )
            buf = io.BytesIO()
            encrypt_stream(io.BytesIO(manifest_json), buf, recipients)
            manifest_bytes = buf.getvalue()
            manifest_name = manifest_object_name(name, True)
        else:
            size, md5, sha = _hash_file(data_file)
            _check_local(data_file, md5, expected_md5)
            datos = ObjetoRemoto(nombre=name, tamanio_bytes=size, md5=md5, sha256=sha)
            try:  # sin cifrar se sube el archivo tal cual: un enlace, no una copia
                os.link(data_file, staging / name)
            except OSError:
                shutil.copyfile(data_file, staging / name)
            manifest_bytes = manifest_json
            manifest_name = manifest_object_name(name, False)
        manifiesto = ObjetoRemoto(
            nombre=manifest_name,
            tamanio_bytes=len(manifest_bytes),
            md5=hashlib.md5(manifest_bytes).hexdigest(),
            sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        )
        (staging / manifest_name).write_bytes(manifest_bytes)
        # Si el remoto informa MD5, la verificación es la nuestra: la MD5 de lo que escribimos (calculada
        # al cifrar) contra la que da el remoto del objeto guardado; rclone no relee el archivo para
        # sumarlo otra vez. Si no la informa, rclone compara con la suma que tengan en común.
        trust_md5 = rclone.reports_md5()
        rclone.upload_dir(staging, rclone_checks_hash=not trust_md5)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = rclone.stat_many([datos.nombre, manifiesto.nombre])
    for obj in (datos, manifiesto):
        _check_uploaded(found.get(obj.nombre), obj)
        if trust_md5 and not found[obj.nombre].md5:
            # Dice que tiene MD5 pero no la dio para este objeto: se comprueba bajándolo entero.
            check_object(rclone, obj)

    descriptor = Descriptor.model_validate(
        {**public, "cifrado": bool(recipients), "datos": datos, "manifiesto": manifiesto}
    )
    rclone.upload_bytes(descriptor.model_dump_json(indent=2).encode(), descriptor.nombre_descriptor)
    return descriptor


def descriptors(rclone: Rclone) -> tuple[list[Descriptor], list[str]]:
    """Los backups publicados en el remoto (ordenados por id) y los descriptores ilegibles o no válidos
    (nombre y motivo), que no se usan."""
    objects = {obj.name: obj for obj in rclone.list()}
    found: list[Descriptor] = []
    broken: list[str] = []
    for name in sorted(objects):
        if not name.startswith("backup_") or not name.endswith(DESCRIPTOR_SUFFIX):
            continue
        try:
            desc = Descriptor.model_validate_json(rclone.read_bytes(name))
        except ValidationError:
            broken.append(f"{name} (no es un descriptor)")
            continue
        problem = descriptor_problem(desc)
        if problem is None and desc.nombre_descriptor != name:
            problem = "no corresponde al nombre del backup"
        if problem is None and desc.datos.nombre not in objects:
            problem = f"falta {desc.datos.nombre}"
        if problem is not None:
            broken.append(f"{name} ({problem})")
            continue
        found.append(desc)
    found.sort(key=lambda d: d.id_backup)
    return found, broken


def check_object(rclone: Rclone, obj: ObjetoRemoto) -> None:
    """Baja el objeto entero y compara tamaño y SHA-256 con el descriptor (sin la clave)."""
    sink = HashingWriter(_Null())
    rclone.download(obj.nombre, sink)  # type: ignore[arg-type]  # HashingWriter cumple el protocolo de escritura
    if sink.size != obj.tamanio_bytes or sink.sha256.hexdigest() != obj.sha256:
        raise RemotoError(
            f"{obj.nombre}: lo que guarda el remoto no es lo que se subió "
            f"({sink.size} bytes, SHA-256 {sink.sha256.hexdigest()[:16]}…; se esperaba "
            f"{obj.tamanio_bytes} bytes, {obj.sha256[:16]}…). La copia remota está dañada."
        )


class _Null:
    def write(self, data: memoryview, /) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def fetch_object(rclone: Rclone, obj: ObjetoRemoto, target: Path) -> None:
    """Baja un objeto a `target` verificando tamaño y SHA-256; si no coincide, no queda nada."""
    temp = target.with_name(target.name + PARTIAL)
    try:
        with open(temp, "wb") as raw:
            sink = HashingWriter(raw)
            rclone.download(obj.nombre, sink)  # type: ignore[arg-type]  # HashingWriter cumple el protocolo de escritura
            raw.flush()
            os.fsync(raw.fileno())
        if sink.size != obj.tamanio_bytes or sink.sha256.hexdigest() != obj.sha256:
            raise RemotoError(
                f"{obj.nombre}: lo bajado no coincide con el descriptor (tamaño o SHA-256): la copia "
                "remota está dañada o fue modificada; no se usará."
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def open_object(source: Path, target: Path, identities: list[x25519.Identity] | None, cifrado: bool) -> None:
    """Descifra `source` (ya verificado) en `target`; sin cifrado, lo mueve. Atómico en `target`."""
    if not cifrado:
        os.replace(source, target)
        return
    if not identities:
        raise CifradoError("La copia remota está cifrada: indique la identidad (--identidad clave.txt).")
    temp = target.with_name(target.name + PARTIAL)
    try:
        with open(source, "rb") as src, open(temp, "wb") as out:
            decrypt_stream(src, out, identities)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def decrypt_bytes(data: bytes, identities: list[x25519.Identity] | None, cifrado: bool) -> bytes:
    if not cifrado:
        return data
    if not identities:
        raise CifradoError("La copia remota está cifrada: indique la identidad (--identidad clave.txt).")
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, identities)
    return out.getvalue()


def remove(rclone: Rclone, descriptor: Descriptor) -> None:
    """Borra un backup del remoto: primero el descriptor (deja de estar publicado), después el resto."""
    rclone.delete(descriptor.nombre_descriptor)
    rclone.delete(descriptor.manifiesto.nombre)
    rclone.delete(descriptor.datos.nombre)
