"""Traer del remoto la cadena de un backup a BACKUP_PATH, todo verificado antes de tocar la base.

Para la recuperación desde cero (máquina nueva, DATA_PATH y BACKUP_PATH vacíos): se leen los
descriptores, se elige la cadena (la más reciente, o la del id/archivo pedido), se baja cada objeto
comprobando su SHA-256, se descifra con la identidad comprobando el MD5 del manifiesto, y solo si
todo cuadra se publican archivo y manifiesto en BACKUP_PATH (el manifiesto el último). Después la
restauración local de siempre (`backup restaurar`) aplica esa cadena.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pyrage import x25519

from inventario.errors import NoEncontrado
from inventario.modules.remoto import transfer
from inventario.modules.remoto.cifrado import CifradoError, HashingWriter, decrypt_stream
from inventario.modules.remoto.rclone import Rclone, RemotoError
from inventario.modules.remoto.service import MANIFEST_SUFFIX

STAGING = ".remoto-descarga"
MAX_CHAIN = 10_000


@dataclass
class Traido:
    descriptor: transfer.Descriptor
    path: Path  # el archivo de backup ya publicado en BACKUP_PATH
    manifest: dict[str, Any]


def _recency(desc: transfer.Descriptor) -> tuple[datetime, int]:
    """El más reciente es el de la instantánea más nueva (el id solo desempata): tras recuperar un
    punto anterior, los ids de la línea abandonada pueden ser mayores que los de la nueva."""
    return (desc.fecha_instantanea or desc.fecha_creacion, desc.id_backup)


def pick_chain(
    found: list[transfer.Descriptor], key: str | None, require_encrypted: bool = False
) -> list[transfer.Descriptor]:
    """La cadena [completo, ..., pedido]; sin `key`, la del backup más reciente del remoto.

    Con `require_encrypted` (hay identidad o BACKUP_CIFRADO_DESTINATARIOS) un eslabón sin cifrar se
    rechaza: lo pudo dejar cualquiera con escritura en el remoto, sin la clave."""
    found = [d for d in found if transfer.descriptor_problem(d) is None]
    if not found:
        raise NoEncontrado("El remoto no tiene ningún backup publicado válido (ningún *.remoto.json).")
    if key is None:
        target = max(found, key=_recency)
        ties = [d.nombre_archivo for d in found if _recency(d) == _recency(target)]
        if len(ties) > 1:
            raise RemotoError(
                "El remoto tiene varios backups con el mismo id y la misma fecha ("
                + ", ".join(ties)
                + "): no se elige uno al azar; indique el nombre del archivo."
            )
    else:
        matches = [d for d in found if (key.isdigit() and d.id_backup == int(key)) or d.nombre_archivo == key]
        if not matches:
            raise NoEncontrado(f"El remoto no tiene el backup {key}.")
        if len(matches) > 1:
            raise RemotoError(
                f"El remoto tiene {len(matches)} backups con el id {key} ("
                + ", ".join(d.nombre_archivo for d in matches)
                + "): no se elige uno al azar; indique el nombre del archivo."
            )
        target = matches[0]
    by_name = {d.nombre_archivo: d for d in found}
    chain = [target]
    while chain[0].tipo != "COMPLETO":
        if len(chain) > MAX_CHAIN:
            raise RemotoError(f"La cadena de {target.nombre_archivo} en el remoto no termina en un completo.")
        base_name = chain[0].nombre_archivo_base
        base = by_name.get(base_name or "")
        if base is None or base.id_backup != chain[0].id_backup_base:
            raise RemotoError(
                f"Falta en el remoto el completo base {base_name} de {chain[0].nombre_archivo}: "
                "un diferencial solo se aplica sobre su completo."
            )
        chain.insert(0, base)
    if require_encrypted:
        for desc in chain:
            if not desc.cifrado:
                raise RemotoError(
                    f"El backup {desc.id_backup} ({desc.nombre_archivo}) del remoto NO está cifrado y se "
                    "esperaba cifrado (hay identidad o BACKUP_CIFRADO_DESTINATARIOS): cualquiera con "
                    "escritura en el remoto pudo dejarlo; no se usa."
                )
    return chain


def fetch_chain(
    rclone: Rclone,
    key: str | None,
    identities: list[x25519.Identity] | None,
    directory: Path,
    found: list[transfer.Descriptor] | None = None,
    require_encrypted: bool = False,
) -> list[Traido]:
    """Baja, verifica y descifra la cadena en `directory`. Si algo falla, `directory` queda como estaba.

    Con identidad se exige cifrado (además de cuando `require_encrypted`): quien recupera con su clave
    no acepta una copia en claro que cualquiera con escritura en el remoto pudo dejar."""
    if found is None:
        found, _ = transfer.descriptors(rclone)
    chain = pick_chain(found, key, require_encrypted or bool(identities))
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        ready: list[tuple[transfer.Descriptor, Path, Path, dict[str, Any]]] = []
        previous: dict[str, Any] | None = None
        for desc in chain:
            data, manifest_file, manifest = _fetch_one(rclone, desc, identities, staging)
            if previous is not None and (
                manifest.get("id_backup_base") != previous.get("id_backup")
                or manifest.get("hash_md5_base") != previous.get("hash_md5")
            ):
                raise RemotoError(
                    f"{desc.nombre_archivo} no se hizo sobre {previous['nombre_archivo']} (id o MD5 de la "
                    "base distintos): la cadena del remoto no es coherente."
                )
            previous = manifest
            ready.append((desc, data, manifest_file, manifest))
        # Todo verificado: publicar (archivo y después manifiesto, como un backup local).
        result = []
        for desc, data, manifest_file, manifest in ready:
            final = directory / desc.nombre_archivo
            os.replace(data, final)
            os.replace(manifest_file, directory / (desc.nombre_archivo + MANIFEST_SUFFIX))
            result.append(Traido(desc, final, manifest))
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_one(
    rclone: Rclone,
    desc: transfer.Descriptor,
    identities: list[x25519.Identity] | None,
    staging: Path,
) -> tuple[Path, Path, dict[str, Any]]:
    raw_manifest = staging / desc.manifiesto.nombre
    transfer.fetch_object(rclone, desc.manifiesto, raw_manifest)
    manifest_bytes = transfer.decrypt_bytes(raw_manifest.read_bytes(), identities, desc.cifrado)
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise RemotoError(f"El manifiesto de {desc.nombre_archivo} en el remoto no es JSON válido.")
    if manifest.get("id_backup") != desc.id_backup or manifest.get("nombre_archivo") != desc.nombre_archivo:
        raise RemotoError(f"El manifiesto de {desc.nombre_archivo} no corresponde a su descriptor.")
    manifest_file = staging / (desc.nombre_archivo + MANIFEST_SUFFIX)
    manifest_file.write_bytes(manifest_bytes)

    raw_data = staging / desc.datos.nombre
    transfer.fetch_object(rclone, desc.datos, raw_data)
    data = staging / desc.nombre_archivo
    if desc.cifrado:
        if not identities:
            raise CifradoError("La copia remota está cifrada: indique la identidad (--identidad clave.txt).")
        with open(raw_data, "rb") as src, open(data, "wb") as out:
            sink = HashingWriter(out)
            decrypt_stream(src, sink, identities)  # type: ignore[arg-type]  # HashingWriter cumple el protocolo de escritura
        raw_data.unlink()
        md5 = sink.md5.hexdigest()
    else:
        # Sin cifrado el objeto ya es el archivo de backup (mismo nombre).
        md5 = _md5(data)
    if md5 != manifest.get("hash_md5"):
        raise RemotoError(
            f"{desc.nombre_archivo}: el MD5 del archivo descifrado ({md5}) no es el de su manifiesto "
            f"({manifest.get('hash_md5')}); no se usará."
        )
    return data, manifest_file, manifest


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Verificacion:
    descriptor: transfer.Descriptor
    error: str | None


def verify(rclone: Rclone, key: str | None, todos: bool) -> list[Verificacion]:
    """Baja y comprueba (tamaño y SHA-256, sin la clave) el backup pedido, el más reciente o todos."""
    found, broken = transfer.descriptors(rclone)
    if todos:
        targets = found
    else:
        targets = pick_chain(found, key)[-1:]
    results = []
    for desc in targets:
        try:
            transfer.check_object(rclone, desc.manifiesto)
            transfer.check_object(rclone, desc.datos)
            results.append(Verificacion(desc, None))
        except RemotoError as exc:
            results.append(Verificacion(desc, exc.mensaje))
    if todos and broken:
        raise RemotoError("Descriptores ilegibles en el remoto: " + ", ".join(broken))
    return results
