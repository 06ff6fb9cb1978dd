"""Utilidades de archivos que comparten backups y logs."""

from __future__ import annotations

import os
from pathlib import Path


def human_size(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("inalcanzable")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def nearest_existing(path: Path) -> Path:
    """`path` o su primer ancestro que exista: donde se creará el directorio, y el disco que lo recibirá."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
