"""Consola web (`/consola`): páginas HTML generadas en el servidor sobre los mismos servicios que la API."""
