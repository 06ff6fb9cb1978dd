"""Métricas Prometheus (`/metrics`): las de la base y las de las peticiones HTTP."""
