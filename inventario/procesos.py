"""Preguntas sobre procesos del sistema que comparten la base embebida y el rclone residente."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """¿Existe el proceso `pid`? (también si es de otro usuario)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # existe, de otro usuario
        return True
    return True
