"""Planificador de mantenimiento: jobs programados, registro de corridas y `/api/v1/jobs`."""
