"""Utilidades de las pruebas de backup: historias aleatorias, foto de la base y restauración con psql."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from inventario.config import Settings
from inventario.modules.backup.repo import backup_name
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime
from tests.conftest import admin_conn

# Tablas que no son datos respaldados: el catálogo (backups y su estado fuera del sitio), que se
# reconstruye desde los manifiestos y el remoto tras restaurar, y `punto_restauracion`, que cada
# archivo escribe al aplicarse (no se comparan fila a fila).
CATALOG_TABLES = {"historial_backup", "copia_remota", "punto_restauracion"}


def connect(server: DatabaseServer, autocommit: bool = True) -> psycopg.Connection:
    return server.connect(autocommit=autocommit)


def snapshot(server: DatabaseServer) -> dict[str, list[tuple]]:
    """Todas las tablas de public (salvo el catálogo), fila a fila en orden de clave, como texto."""
    result: dict[str, list[tuple]] = {}
    with connect(server) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        for table in tables:
            if table in CATALOG_TABLES:
                continue
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM public.{} AS t ORDER BY 1").format(sql.Identifier(table))
            ).fetchall()
            result[table] = [r[0] for r in rows]
        result["__secuencias__"] = conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' "
            "AND sequencename NOT LIKE 'historial_backup%' ORDER BY 1"
        ).fetchall()
    return result


def new_database(server: DatabaseServer, name: str) -> DatabaseServer:
    with admin_conn(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    return server.with_database(name)


def drop_database(server: DatabaseServer, name: str) -> None:
    with admin_conn(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def psql_file(
    runtime: Runtime, target: DatabaseServer, path: Path, *, user: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Lo que haría un operador: `gunzip -c ARCHIVO | psql -d BASE`."""
    conninfo, env = target.libpq()
    command = [runtime.pg_tools().path("psql"), "-X", "-q", "--dbname", conninfo]
    if user:
        command += ["-U", user]
    gunzip = subprocess.Popen(["gunzip", "-c", str(path)], stdout=subprocess.PIPE)
    result = subprocess.run(command, stdin=gunzip.stdout, capture_output=True, env=env, timeout=300)
    gunzip.wait()
    return result


@contextmanager
def cadena_restaurada(
    runtime: Runtime, pg_server: DatabaseServer, origen: DatabaseServer, archivos: list[str], sufijo: str
) -> Iterator[DatabaseServer]:
    """Los `archivos` de BACKUP_PATH, en orden, con psql en una base nueva (cada uno sin ningún error);
    la base se borra al salir."""
    target = new_database(pg_server, origen.database + sufijo)
    try:
        for name in archivos:
            result = psql_file(runtime, target, runtime.settings.backup_dir / name)
            assert result.returncode == 0 and b"ERROR" not in result.stderr, result.stderr.decode()
        yield target
    finally:
        drop_database(pg_server, target.database)


def seed_user(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "INSERT INTO usuarios (nombre_usuario, hash_password, rol) VALUES ('historia', 'x', 'ADMIN') "
        "ON CONFLICT (nombre_usuario) DO UPDATE SET rol = 'ADMIN' RETURNING id_usuario"
    ).fetchone()
    assert row is not None
    return int(row[0])


def pick(conn: psycopg.Connection, table: str, pk: str, k: int) -> int | None:
    """La fila número k (módulo el total) de la tabla, o None si está vacía."""
    total = conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))).fetchone()
    if not total or not total[0]:
        return None
    row = conn.execute(
        sql.SQL("SELECT {pk} FROM public.{t} ORDER BY {pk} OFFSET %s LIMIT 1").format(
            pk=sql.Identifier(pk), t=sql.Identifier(table)
        ),
        (k % total[0],),
    ).fetchone()
    return int(row[0]) if row else None


def apply_op(conn: psycopg.Connection, op: tuple, user_id: int, serial: list[int]) -> None:
    """Una operación de la historia; si viola una restricción se deshace sola (savepoint)."""
    kind = op[0]
    serial[0] += 1
    n = serial[0]
    try:
        with conn.transaction():
            if kind == "ins_producto":
                _, nombre, descripcion, minimo = op
                conn.execute(
                    "INSERT INTO productos (codigo, nombre, descripcion, stock_minimo) VALUES (%s, %s, %s, %s)",
                    (f"P{n:06d}", nombre, descripcion, minimo),
                )
            elif kind == "upd_producto":
                _, k, nombre, activo = op
                pid = pick(conn, "productos", "id_producto", k)
                conn.execute(
                    "UPDATE productos SET nombre = %s, activo = %s WHERE id_producto = %s",
                    (nombre, activo, pid),
                )
            elif kind == "del_producto":
                pid = pick(conn, "productos", "id_producto", op[1])
                conn.execute("DELETE FROM productos WHERE id_producto = %s", (pid,))
            elif kind == "cambia_clave_producto":
                pid = pick(conn, "productos", "id_producto", op[1])
                conn.execute(
                    "UPDATE productos SET id_producto = id_producto + 1000000 WHERE id_producto = %s", (pid,)
                )
            elif kind == "ins_lote":
                _, k, codigo, dias, cantidad = op
                pid = pick(conn, "productos", "id_producto", k)
                if pid is None:
                    return
                vence = None if dias is None else date(2026, 1, 1) + timedelta(days=dias)
                conn.execute(
                    "INSERT INTO lotes (id_producto, codigo_lote, fecha_vencimiento, cantidad) VALUES (%s, %s, %s, %s)",
                    (pid, f"{codigo}-{n}", vence, cantidad),
                )
            elif kind == "upd_lote":
                _, k, delta = op
                lid = pick(conn, "lotes", "id_lote", k)
                conn.execute(
                    "UPDATE lotes SET cantidad = greatest(cantidad + %s, 0) WHERE id_lote = %s", (delta, lid)
                )
            elif kind == "del_lote":
                lid = pick(conn, "lotes", "id_lote", op[1])
                conn.execute("DELETE FROM lotes WHERE id_lote = %s", (lid,))
            elif kind == "ins_mov":
                _, k, cantidad, motivo = op
                lid = pick(conn, "lotes", "id_lote", k)
                if lid is None:
                    return
                conn.execute(
                    "INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, motivo, id_usuario) "
                    "SELECT 'ENTRADA', id_producto, id_lote, %s, %s, %s FROM lotes WHERE id_lote = %s",
                    (cantidad, motivo, user_id, lid),
                )
            elif kind == "del_mov":
                mid = pick(conn, "movimientos", "id_movimiento", op[1])
                conn.execute("DELETE FROM movimientos WHERE id_movimiento = %s", (mid,))
            elif kind == "ins_notif":
                _, titulo, mensaje, semaforo = op
                conn.execute(
                    "INSERT INTO notificaciones (tipo, titulo, mensaje, semaforo) VALUES ('PRUEBA', %s, %s, %s)",
                    (titulo, mensaje, semaforo),
                )
            elif kind == "upd_notif":
                nid = pick(conn, "notificaciones", "id_notificacion", op[1])
                conn.execute("UPDATE notificaciones SET leida = NOT leida WHERE id_notificacion = %s", (nid,))
            elif kind == "del_notif":
                nid = pick(conn, "notificaciones", "id_notificacion", op[1])
                conn.execute("DELETE FROM notificaciones WHERE id_notificacion = %s", (nid,))
            elif kind in ("reinserta_producto", "reinserta_notif"):
                # La misma clave primaria de una fila borrada vuelve a existir (alta manual con id).
                tabla, pk = (
                    ("productos", "id_producto")
                    if kind == "reinserta_producto"
                    else ("notificaciones", "id_notificacion")
                )
                borradas = [
                    int(r[0])
                    for r in conn.execute(
                        "SELECT DISTINCT (clave ->> %s)::bigint FROM registro_eliminaciones "
                        "WHERE tabla = %s AND clave IS NOT NULL ORDER BY 1",
                        (pk, tabla),
                    )
                ]
                if not borradas:
                    return
                clave = borradas[op[1] % len(borradas)]
                if kind == "reinserta_producto":
                    conn.execute(
                        "INSERT INTO productos (id_producto, codigo, nombre) VALUES (%s, %s, 'Reinsertado')",
                        (clave, f"R{n:06d}"),
                    )
                else:
                    conn.execute(
                        "INSERT INTO notificaciones (id_notificacion, tipo, titulo, mensaje, semaforo) "
                        "VALUES (%s, 'PRUEBA', 'Reinsertada', '', 'VERDE')",
                        (clave,),
                    )
            else:  # pragma: no cover
                raise AssertionError(kind)
    # LockNotAvailable: la fila la tiene otra transacción abierta de la historia (ver lock_timeout).
    except (psycopg.errors.IntegrityError, psycopg.errors.CheckViolation, psycopg.errors.LockNotAvailable):
        pass


def bloquear_pg_dump(server: DatabaseServer) -> psycopg.Connection:
    """Una sesión con una tabla propia bloqueada: pg_dump la espera (y nada más), el backup queda
    EN_PROCESO hasta que la sesión se deshaga."""
    with connect(server) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS zz_bloqueo (id int)")
    conn = connect(server, autocommit=False)
    conn.execute("LOCK TABLE zz_bloqueo IN ACCESS EXCLUSIVE MODE")
    return conn


def sin_rastro_de_restauraciones(snap: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """`snap` sin lo que una restauración deja a propósito en la base restaurada (su fila en
    `restauraciones`, su aviso RESTAURACION y las secuencias de ambos): el resto debe ser idéntico."""
    snap = dict(snap)
    snap.pop("restauraciones", None)
    snap["notificaciones"] = [n for n in snap.get("notificaciones", []) if ",RESTAURACION," not in str(n)]
    snap["__secuencias__"] = [
        s
        for s in snap["__secuencias__"]
        if s[0] not in ("notificaciones_id_notificacion_seq", "restauraciones_id_restauracion_seq")
    ]
    return snap


API = "/api/v1/backup"


H = dict[str, str]


def fill(server: DatabaseServer, productos: int = 20, texto: str = "x") -> None:
    with connect(server) as conn:
        seed_user(conn)
        conn.execute(
            "INSERT INTO productos (codigo, nombre, descripcion) "
            "SELECT 'C' || g || '-' || md5(random()::text), 'Producto ' || g, repeat(%s, 10) "
            "FROM generate_series(1, %s) g",
            (texto, productos),
        )


def cambiar(server: DatabaseServer, n: int = 3) -> None:
    with connect(server) as conn:
        conn.execute(
            "INSERT INTO productos (codigo, nombre) SELECT 'N' || g || '-' || md5(random()::text), 'Nuevo' "
            "FROM generate_series(1, %s) g",
            (n,),
        )


def esperar_fin(client: TestClient, headers: H, id_backup: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{API}/{id_backup}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["estado"] != "EN_PROCESO":
            return r.json()
        assert time.monotonic() < deadline, "el backup no terminó a tiempo"
        time.sleep(0.05)


def backup(client: TestClient, headers: H, ruta: str = "/ejecutar-completo", **params: Any) -> dict:
    r = client.post(f"{API}{ruta}", params={"esperar": "true", **params}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["estado"] == "COMPLETADO"
    return r.json()


def notificaciones(client: TestClient, headers: H) -> list[dict]:
    r = client.get("/api/v1/notificaciones", params={"tipo": "BACKUP", "limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def envejecer(server: DatabaseServer, dias: dict[int, int]) -> None:
    """Simula la edad de los backups; con el GUC del restaurador el trigger respeta la fecha."""
    with connect(server, autocommit=False) as conn:
        conn.execute("SET LOCAL inventario.restaurando = 'on'")
        for id_backup, d in dias.items():
            conn.execute(
                "UPDATE historial_backup SET fecha_creacion = now() - make_interval(days => %s) WHERE id_backup = %s",
                (d, id_backup),
            )
        conn.commit()


@contextmanager
def fallo_sembrado(settings: Settings, segundos: int = 40) -> Iterator[None]:
    """Ocupa los nombres `.parcial` de los próximos segundos: el motor no puede crear su archivo
    temporal, el backup falla después de registrarse (estado ERROR) sin tocar nada más. Al salir,
    los quita."""
    directorio = settings.backup_dir
    directorio.mkdir(parents=True, exist_ok=True)
    ahora = datetime.now(settings.tz)
    plantados = []
    try:
        for s in range(-1, segundos):
            for tipo in ("COMPLETO", "DIFERENCIAL", "INCREMENTAL"):
                p = directorio / (backup_name(ahora + timedelta(seconds=s), tipo) + ".parcial")
                p.write_bytes(b"ocupado")
                plantados.append(p)
        yield
    finally:
        for p in plantados:
            p.unlink(missing_ok=True)


def diferencial_fallido(client: TestClient, headers: H, settings: Settings) -> dict:
    """Un DIFERENCIAL que falla tras registrarse: 503 con su registro en ERROR."""
    with fallo_sembrado(settings):
        r = client.post(f"{API}/ejecutar-diferencial", params={"esperar": "true"}, headers=headers)
    assert r.status_code == 503, r.text
    return r.json()


def fill_inventario(server: DatabaseServer, productos: int = 20, texto: str = "x") -> None:
    with connect(server) as conn:
        user = seed_user(conn)
        conn.execute(
            "INSERT INTO productos (codigo, nombre, descripcion) SELECT 'C' || g || '-' || md5(random()::text), "
            "'Producto ' || g, repeat(%s, 10) FROM generate_series(1, %s) g",
            (texto, productos),
        )
        conn.execute(
            "INSERT INTO lotes (id_producto, codigo_lote, fecha_vencimiento, cantidad) "
            "SELECT id_producto, 'L1', CURRENT_DATE + 30, 10 FROM productos p "
            "WHERE NOT EXISTS (SELECT 1 FROM lotes l WHERE l.id_producto = p.id_producto)"
        )
        conn.execute(
            "INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, id_usuario) "
            "SELECT 'ENTRADA', id_producto, id_lote, 10, %s FROM lotes l "
            "WHERE NOT EXISTS (SELECT 1 FROM movimientos m WHERE m.id_lote = l.id_lote)",
            (user,),
        )


def restaurar_admin(server: DatabaseServer) -> None:
    with connect(server) as conn:
        conn.execute(
            "UPDATE usuarios SET activo = true, rol = 'ADMIN', bloqueado_hasta = NULL, intentos_fallidos = 0 "
            "WHERE nombre_usuario = 'admin' AND (activo IS NOT TRUE OR rol <> 'ADMIN' OR bloqueado_hasta IS NOT NULL)"
        )


# Un miércoles: ni el día del COMPLETO (lunes por defecto) ni domingo.
MIERCOLES = datetime(2025, 12, 3, tzinfo=ZoneInfo("America/Mexico_City"))


def tocar_producto(server: DatabaseServer, nombre: str) -> None:
    """Un cambio mínimo (el nombre del primer producto): lo que un incremental debe llevar."""
    with connect(server) as conn:
        conn.execute(
            "UPDATE productos SET nombre = %s WHERE id_producto = (SELECT min(id_producto) FROM productos)",
            (nombre,),
        )
