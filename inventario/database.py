"""Motor, sesiones y base declarativa. El motor vive en `app.state`; nada global."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, func
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Auditado:
    """Columnas de auditoría; los triggers de la base las sellan en toda escritura."""

    fecha_creacion: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    fecha_actualizacion: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )


def make_engine(url: URL, time_zone: str | None = None, **kwargs: object) -> Engine:
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if time_zone:
        # CURRENT_DATE (vencimientos, FEFO, alertas) debe cambiar a medianoche local, no UTC.
        connect_args["options"] = f"-c TimeZone={time_zone}"
    options: dict[str, object] = {
        "pool_pre_ping": True,
        # Conexiones que el pool conserva abiertas (20) y cuántas más puede abrir de paso (10): el
        # mismo máximo de 30 por proceso que antes. Con 10 conservadas, 50 clientes tenían a la vez
        # más de 10 peticiones en la base, y cada conexión de más se abría y se cerraba: 0.2
        # conexiones nuevas por petición, cada una un proceso de PostgreSQL nuevo con sus cachés de
        # catálogo vacías (~1 ms de CPU de PostgreSQL por petición; docs/benchmarks.md, "Ronda 2m").
        "pool_size": 20,
        "max_overflow": 10,
        "connect_args": connect_args,
    }
    options.update(kwargs)
    return create_engine(url, **options)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
