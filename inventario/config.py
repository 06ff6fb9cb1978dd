"""Configuración única del servicio (variables de entorno y `.env`).

Los nombres de la sección BACKUP y LOGS MAINTENANCE son el contrato del plan de mantenimiento.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # ==================== BASE DE DATOS ====================
    DATABASE_URL: str | None = None  # sin valor: PostgreSQL embebido (pgserver)
    DATA_PATH: str = "data"  # datos del PostgreSQL embebido y la clave secreta generada
    PG_BIN_DIR: str | None = None  # carpeta de pg_dump/psql cuando DATABASE_URL apunta a otro servidor

    # ==================== SERVICIO ====================
    HOST: str = "127.0.0.1"
    PORT: int = Field(8000, ge=1, le=65535)
    # Procesos que atienden HTTP (`serve --workers N`). Con más de uno, el proceso principal es el
    # dueño del PostgreSQL embebido, del planificador y del despachador de avisos; los workers
    # solo atienden peticiones. Más de los núcleos de la máquina no ayuda.
    WORKERS: int = Field(1, ge=1, le=64)
    ZONA_HORARIA: str = "America/Mexico_City"
    SECRET_KEY: str | None = None  # sin valor: se genera y guarda en DATA_PATH/secret_key
    TOKEN_MINUTOS: int = Field(480, ge=1)
    LOGIN_MAX_INTENTOS: int = Field(5, ge=1)
    LOGIN_BLOQUEO_MINUTOS: int = Field(15, ge=1)
    # Fallos desde una misma dirección contra cualesquiera cuentas antes de pausarla (LOGIN_MAX_INTENTOS
    # cuenta los de una cuenta desde una dirección).
    LOGIN_MAX_INTENTOS_CLIENTE: int = Field(20, ge=1)
    # IPs (separadas por comas) del proxy inverso cuyas X-Forwarded-For se creen; vacío: ninguna.
    PROXY_CONFIABLE: str | None = None
    INVENTARIO_ADMIN_PASSWORD: str | None = None
    HEALTH_DISCO_MIN_MB: int = Field(1024, ge=0)  # espacio libre mínimo en BACKUP_PATH
    LOG_LEVEL: str = "INFO"

    # ==================== BACKUP ====================
    BACKUP_ENABLED: bool = True
    BACKUP_PATH: str = "backups"
    BACKUP_RETENTION_DAYS: int = Field(90, ge=1)
    BACKUP_FULL_DAY: int = Field(0, ge=0, le=6)  # 0=Lunes
    BACKUP_HOUR: int = Field(3, ge=0, le=23)
    BACKUP_MINUTE: int = Field(0, ge=0, le=59)
    # Nivel de gzip, la misma escala 1-9 de `gzip`, que se pasa tal cual a zlib-ng (1 el más rápido y
    # grande; 6 da el tamaño de `gzip -6` en menos de la mitad de CPU). Ver docs/benchmarks.md.
    BACKUP_GZIP_NIVEL: int = Field(6, ge=1, le=9)
    # `nice` de pg_dump, de la compresión y (servidor en esta máquina) del proceso de PostgreSQL que
    # sirve a pg_dump: con la CPU ocupada, la tienda va primero. 0 = misma prioridad que el servicio.
    BACKUP_PRIORIDAD: int = Field(19, ge=0, le=19)
    # Además, pg_dump y su proceso de PostgreSQL (servidor local) con la política SCHED_IDLE de
    # Linux: solo usan CPU que la tienda no quiere y ceden el núcleo en cuanto ella despierta. No se
    # midió mejora sobre nice 19 (docs/benchmarks.md, ronda 2): apagado salvo que se pida.
    BACKUP_CPU_OCIOSA: bool = False
    # Freno del COMPLETO: mientras la tienda tiene consultas en curso, leer de pg_dump a lo sumo
    # estos MB/s (sin comprimir); con la tienda libre, sin límite. 0 = sin freno.
    BACKUP_FRENO_MB_S: float = Field(0, ge=0, allow_inf_nan=False)
    # Job `backup_incremental`: cada cuántos minutos (0 = apagado), entre los backups diarios; y
    # cuántos días se guardan los incrementales que ya solo sirven para restaurar a un momento dado.
    BACKUP_INCREMENTAL_MINUTOS: int = Field(15, ge=0, le=1440)
    BACKUP_INCREMENTAL_RETENTION_DAYS: int = Field(7, ge=1)

    # ==================== BACKUP FUERA DEL SITIO ====================
    # Destino de las copias como ruta de rclone (`s3:cubeta/inventario`, `nas:/backups`, o una ruta
    # local como un disco USB montado). Sin valor: no se copian fuera del sitio.
    BACKUP_REMOTO: str | None = None
    # `rclone.conf` con las credenciales (permisos 0600). Sin valor: la configuración por defecto de
    # rclone o sus variables RCLONE_CONFIG_*. Las credenciales nunca pasan por aquí ni por argv.
    BACKUP_REMOTO_CONFIG: str | None = None
    # Claves públicas age (`age1...`, separadas por comas o espacios): con ellas todo lo que sale de
    # la máquina va cifrado. Sin valor: las copias viajan sin cifrar.
    BACKUP_CIFRADO_DESTINATARIOS: str | None = None
    BACKUP_REMOTO_RETENTION_DAYS: int | None = Field(None, ge=1)  # sin valor: BACKUP_RETENTION_DAYS
    # /health avisa si el último backup COMPLETADO no llegó al remoto en estas horas.
    BACKUP_REMOTO_MAX_HORAS: float = Field(26, gt=0)

    # ==================== LOGS MAINTENANCE ====================
    LOGS_COMPRESSION_ENABLED: bool = True
    LOGS_COMPRESSION_DAYS: int = Field(7, ge=1)
    LOGS_RETENTION_DAYS: int = Field(90, ge=1)
    LOGS_PATH: str = "logs"

    # ==================== ALERTAS ====================
    ALERTAS_DIAS_VENCIMIENTO: int = Field(30, ge=0)

    # ==================== SCHEDULER ====================
    # Horas de los jobs `logs_maintenance` y `alertas_diarias` (el de backup usa BACKUP_HOUR/MINUTE).
    LOGS_HOUR: int = Field(4, ge=0, le=23)
    LOGS_MINUTE: int = Field(0, ge=0, le=59)
    ALERTAS_HOUR: int = Field(6, ge=0, le=23)
    ALERTAS_MINUTE: int = Field(0, ge=0, le=59)
    # Si el servicio estuvo detenido a la hora de un job, la corrida perdida se hace una vez al
    # volver, siempre que no hayan pasado más de estos minutos; después se espera a la siguiente.
    SCHEDULER_GRACIA_MIN: int = Field(720, ge=1, le=1440)

    # ==================== EMAIL (SMTP) ====================
    # Envío de backups por email (`POST /api/v1/backup/{id}/enviar-email`). Sin SMTP_HOST el
    # endpoint responde 503 "no configurado". SMTP_TLS: "starttls" (puerto 587), "ssl" (465,
    # TLS implícito) o "none" (solo para un servidor local de confianza).
    SMTP_HOST: str | None = None
    SMTP_PORT: int = Field(587, ge=1, le=65535)
    SMTP_USUARIO: str | None = None  # sin valor: no se autentica
    SMTP_PASSWORD: SecretStr | None = None  # nunca se registra ni se muestra
    SMTP_TLS: Literal["none", "starttls", "ssl"] = "starttls"
    SMTP_REMITENTE: str | None = None  # From; sin valor se usa SMTP_USUARIO si es una dirección
    SMTP_TIMEOUT: float = Field(30, gt=0, le=600)  # segundos por operación de red
    EMAIL_ADJUNTO_MAX_MB: float = Field(20, gt=0)  # más grande: 413, se sugiere la descarga

    # ==================== NOTIFICACIONES (envío fuera de la aplicación) ====================
    # Email por SMTP_* a NOTIFICACIONES_EMAIL (una o más direcciones, separadas por coma) y cualquier
    # otro canal con URLs de apprise (telegram://, slack://, ntfy://, json://...) separadas por
    # espacios o saltos de línea. Las URLs llevan credenciales: nunca se registran ni se muestran.
    NOTIFICACIONES_EMAIL: str | None = None
    NOTIFICACIONES_URLS: SecretStr | None = None
    # ROJO sale al momento; AMARILLO (y VERDE, si se pide) en un resumen diario tras alertas_diarias.
    NOTIFICACIONES_SEMAFORO_MINIMO: Literal["VERDE", "AMARILLO", "ROJO"] = "AMARILLO"
    # Cada cuánto el despachador revisa avisos nuevos y reintentos pendientes.
    NOTIFICACIONES_INTERVALO_SEGUNDOS: float = Field(15, gt=0, le=3600)
    # "Dead man's switch": petición tras cada backup programado (healthchecks.io, Uptime Kuma...).
    # Tras un fallo se usa BACKUP_PING_URL_FALLO o, sin ella, BACKUP_PING_URL + "/fail".
    BACKUP_PING_URL: SecretStr | None = None
    BACKUP_PING_URL_FALLO: SecretStr | None = None
    # Aviso ROJO cuando ningún backup se completó en estas horas.
    BACKUP_MAX_HORAS_SIN_BACKUP: int = Field(26, ge=1)

    # ==================== MÉTRICAS (Prometheus) ====================
    METRICAS_HABILITADAS: bool = False  # /metrics responde 404 mientras esté apagado
    METRICAS_TOKEN: SecretStr | None = None  # con valor, /metrics exige "Authorization: Bearer ..."

    @field_validator("SMTP_HOST", "SMTP_USUARIO", "SMTP_REMITENTE")
    @classmethod
    def _vacio_es_none(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("no puede contener saltos de línea ni caracteres de control")
        return value.strip()

    @field_validator("BACKUP_REMOTO", "BACKUP_REMOTO_CONFIG")
    @classmethod
    def _remoto_valido(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("no puede contener saltos de línea ni caracteres de control")
        if info.field_name == "BACKUP_REMOTO":
            from inventario.modules.remoto.rclone import check_remote_spec

            check_remote_spec(value)
        return value

    @field_validator("BACKUP_CIFRADO_DESTINATARIOS")
    @classmethod
    def _destinatarios_validos(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        from inventario.modules.remoto.cifrado import parse_recipients

        return " ".join(str(r) for r in parse_recipients(value))

    @field_validator("NOTIFICACIONES_EMAIL")
    @classmethod
    def _direcciones_validas(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        from email_validator import EmailNotValidError, validate_email

        direcciones = [d.strip() for d in value.replace(";", ",").split(",") if d.strip()]
        for direccion in direcciones:
            try:
                validate_email(direccion, check_deliverability=False)
            except EmailNotValidError:
                raise ValueError(f"dirección de email inválida: {direccion!r}") from None
        return ", ".join(direcciones)

    @field_validator("NOTIFICACIONES_URLS", "BACKUP_PING_URL", "BACKUP_PING_URL_FALLO", "METRICAS_TOKEN")
    @classmethod
    def _secreto_vacio_es_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("BACKUP_PING_URL", "BACKUP_PING_URL_FALLO")
    @classmethod
    def _ping_http(cls, value: SecretStr | None) -> SecretStr | None:
        # El mensaje no repite la URL: puede llevar el identificador secreto del chequeo.
        if value is not None and not value.get_secret_value().strip().startswith(("http://", "https://")):
            raise ValueError("debe ser una URL http:// o https://")
        return value

    @field_validator("NOTIFICACIONES_SEMAFORO_MINIMO", mode="before")
    @classmethod
    def _semaforo_mayusculas(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("SMTP_TLS", mode="before")
    @classmethod
    def _tls_minusculas(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("ZONA_HORARIA")
    @classmethod
    def _zona_valida(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"zona horaria desconocida: {value!r}") from exc
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _nivel_valido(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("debe ser DEBUG, INFO, WARNING o ERROR")
        return value

    @field_validator("DATABASE_URL")
    @classmethod
    def _url_valida(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("debe ser una URL postgresql://usuario:clave@servidor:puerto/base")
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.ZONA_HORARIA)

    @property
    def backup_dir(self) -> Path:
        return Path(self.BACKUP_PATH).resolve()

    @property
    def remoto_retention_days(self) -> int:
        return self.BACKUP_REMOTO_RETENTION_DAYS or self.BACKUP_RETENTION_DAYS

    @property
    def logs_dir(self) -> Path:
        return Path(self.LOGS_PATH).resolve()

    @property
    def data_dir(self) -> Path:
        return Path(self.DATA_PATH).resolve()

    def secret_key(self) -> str:
        """La clave firmada de los tokens; generada una vez y guardada para sobrevivir reinicios."""
        if self.SECRET_KEY:
            return self.SECRET_KEY
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        from inventario.permisos import write_private

        # Solo se crea si falta: sus permisos los fija permisos.secure_service_paths (como root,
        # el usuario de pgserver tiene que poder atravesarla).
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)  # resto de un arranque cortado
        write_private(tmp, key.encode())  # 0600 desde su creación, no después
        tmp.replace(path)
        return key


class ConfigError(Exception):
    """Configuración inválida: el mensaje nombra la variable."""


def load_settings(**overrides: object) -> Settings:
    from pydantic import ValidationError

    from inventario.errors import traducir

    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # valores crudos: pydantic los valida
    except ValidationError as exc:
        # traducir() espera la ubicación de FastAPI ("body", campo...): el campo es la variable.
        lines = [f"  {traducir({**err, 'loc': ('settings', *err['loc'])})}" for err in exc.errors()]
        raise ConfigError("Configuración inválida:\n" + "\n".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
