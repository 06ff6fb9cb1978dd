"""Importa todos los modelos para que `Base.metadata` esté completa (Alembic, pruebas)."""

from inventario.auditoria import RegistroEliminacion
from inventario.database import Base
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.envios.model import Envio, Incidente, MensajeSalida
from inventario.modules.lotes.model import Lote
from inventario.modules.movimientos.model import Movimiento
from inventario.modules.notificaciones.model import Notificacion
from inventario.modules.planificador.model import EjecucionJob
from inventario.modules.productos.model import Producto
from inventario.modules.remoto.model import CopiaRemota
from inventario.modules.usuarios.model import Usuario

__all__ = [
    "Base",
    "CopiaRemota",
    "EjecucionJob",
    "Envio",
    "HistorialBackup",
    "Incidente",
    "Lote",
    "MensajeSalida",
    "Movimiento",
    "Notificacion",
    "Producto",
    "RegistroEliminacion",
    "Usuario",
]
