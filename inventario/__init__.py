"""Inventario: backend de inventario con mantenimiento que nunca pierde datos."""

__version__ = "0.1.0"
