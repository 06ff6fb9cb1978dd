"""Mantenimiento de los archivos de log (compresión y retención)."""
