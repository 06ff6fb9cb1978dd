"""Envío de las notificaciones fuera de la aplicación: email, canales apprise y el ping de backups."""
