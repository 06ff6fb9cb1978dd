"""Permisos de lo que el servicio escribe: nada legible por otros usuarios de la máquina.

Los backups llevan el hash de la contraseña de cada usuario; los logs, nombres, direcciones y
errores; DATA_PATH, la clave que firma los tokens. Archivos 0600 en carpetas 0700, con cualquier
umask: el proceso (servicio o CLI) trabaja con umask 077 y las carpetas se corrigen al arrancar,
también las que una versión anterior dejó abiertas.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from inventario.config import Settings

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Con el servicio corriendo como root, pgserver ejecuta PostgreSQL como el usuario `pgserver`, que
# tiene que atravesar DATA_PATH para llegar a DATA_PATH/pgdata (esa sí es 0700 y suya): paso sí,
# listar no.
TRAVERSE_ONLY_DIR = 0o711


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        path.chmod(mode)
    return path


def private_file(path: Path) -> None:
    if path.is_file() and not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(PRIVATE_FILE)


def write_private(path: Path, data: bytes) -> None:
    """Crea `path` (que no debe existir) con permisos 0600 desde el primer byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _foreign_pgdata(data_dir: Path) -> bool:
    pgdata = data_dir / "pgdata"
    return pgdata.exists() and pgdata.stat().st_uid != os.geteuid()


def secure_service_paths(settings: Settings) -> None:
    """umask 077 para el proceso y carpetas de datos, backups y logs privadas (con sus archivos)."""
    os.umask(0o077)
    # Las que aún no existen las crea su dueño (logs, backups) ya con el umask 077.
    for directory in (settings.backup_dir, settings.logs_dir):
        if directory.is_dir():
            private_dir(directory)
            for entry in directory.iterdir():
                private_file(entry)
    if settings.data_dir.exists():
        private_dir(
            settings.data_dir, TRAVERSE_ONLY_DIR if _foreign_pgdata(settings.data_dir) else PRIVATE_DIR
        )
        private_file(settings.data_dir / "secret_key")
