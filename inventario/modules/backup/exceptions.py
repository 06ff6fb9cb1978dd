"""Errores de dominio de los backups. Sin HTTP: cada uno lleva su código y la capa de errores
(`inventario/errors.py`) lo traduce a `{"detalle": ...}`."""

from __future__ import annotations

import errno
from typing import TypeGuard

from inventario.errors import Conflicto, DomainError


class BackupEnCurso(Conflicto):
    def __init__(self) -> None:
        super().__init__(
            "Backup en curso: ya hay otro backup o limpieza ejecutándose; reintente cuando termine"
        )


class BackupError(DomainError):
    """El servicio no pudo completar el backup; reintentar puede funcionar."""

    status = 503

    def __init__(self, mensaje: str, id_backup: int | None = None) -> None:
        super().__init__(mensaje)
        self.id_backup = id_backup  # la fila ERROR que lo documenta, si se pudo escribir


class DiscoLleno(BackupError):
    """El backup falló por falta de espacio (507 Insufficient Storage)."""

    status = 507


class SinCambios(Exception):
    """Nada cambió desde el backup anterior de la cadena: el incremental no escribe archivo."""

    def __init__(self, id_backup: int, nombre_archivo: str) -> None:
        super().__init__(
            f"Sin cambios desde el backup {id_backup} ({nombre_archivo}): no se escribió ningún incremental"
        )
        self.id_backup = id_backup


class RestoreError(DomainError):
    """Algo impide verificar o restaurar un archivo; el mensaje dice qué y cómo seguir."""

    status = 409


def backup_error(mensaje: str, cause: BaseException, id_backup: int | None = None) -> BackupError:
    """`DiscoLleno` si el fallo fue por falta de espacio (en la cadena de causas o en el mensaje de
    una herramienta externa, p. ej. pg_dump), si no `BackupError`."""
    cls = DiscoLleno if _disk_full(cause, mensaje) else BackupError
    return cls(mensaje, id_backup=id_backup)


def sin_espacio(exc: BaseException) -> TypeGuard[OSError]:
    """El error del sistema de "no queda espacio" (disco lleno o cuota agotada)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _disk_full(exc: BaseException | None, mensaje: str) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if sin_espacio(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return "No space left" in mensaje or "Disk quota" in mensaje
