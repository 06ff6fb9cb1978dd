"""Jobs programados del plan de mantenimiento: envoltorios finos sobre los servicios.

| Job ID             | Hora (por defecto)                    | Servicio                                    |
|--------------------|---------------------------------------|---------------------------------------------|
| `backup_diario`    | BACKUP_HOUR:BACKUP_MINUTE (03:00)     | `modules/backup` (backup + retención)       |
| `backup_incremental` | cada BACKUP_INCREMENTAL_MINUTOS (15) | `modules/backup` (incremental; 0 = apagado) |
| `logs_maintenance` | LOGS_HOUR:LOGS_MINUTE (04:00)         | `modules/logs` (comprimir y borrar rotados) |
| `alertas_diarias`  | ALERTAS_HOUR:ALERTAS_MINUTE (06:00)   | `modules/alertas` (vencimiento y stock)     |

Cada uno recibe un `ContextoJob` y devuelve un `ResultadoJob` o lanza una excepción; el
planificador (`modules/planificador`) decide cuándo, se asegura de que corra una sola vez y lo registra.
"""
