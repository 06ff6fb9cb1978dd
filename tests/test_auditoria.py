"""Los triggers de auditoría, probados con SQL crudo (sin ORM): son los que usa el backup diferencial."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

VIEJA = "2001-02-03T04:05:06Z"


def ahora_y(conn: Connection, sql: str, **params: object) -> tuple:
    """Ejecuta `sql` y devuelve (now() de la transacción, primera fila del RETURNING)."""
    row = conn.execute(text(sql), params).one()
    return conn.execute(text("SELECT now()")).scalar_one(), row


def tumbas(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT tabla, clave FROM registro_eliminaciones ORDER BY id_eliminacion")
            )
        ]


def test_insert_y_update_sellan_fechas_aunque_se_indiquen(engine: Engine) -> None:
    with engine.begin() as conn:
        t0, p = ahora_y(
            conn,
            "INSERT INTO productos (codigo, nombre, fecha_creacion, fecha_actualizacion) "
            "VALUES ('A', 'a', :v, :v) RETURNING id_producto, fecha_creacion, fecha_actualizacion",
            v=VIEJA,
        )
    assert p.fecha_creacion == t0 and p.fecha_actualizacion == t0
    with engine.begin() as conn:
        t1, u = ahora_y(
            conn,
            "UPDATE productos SET nombre = 'b', fecha_creacion = :v, fecha_actualizacion = :v "
            "WHERE id_producto = :id RETURNING fecha_creacion, fecha_actualizacion",
            v=VIEJA,
            id=p.id_producto,
        )
    assert t1 > t0
    assert u.fecha_creacion == t0 and u.fecha_actualizacion == t1
    # Un UPDATE que no cambia la clave no deja registro de eliminación.
    assert tumbas(engine) == []


def test_delete_cambio_de_clave_y_truncate_dejan_registro(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO productos (id_producto, codigo, nombre) VALUES (1, 'A', 'a')"))
        conn.execute(
            text(
                "INSERT INTO lotes (id_lote, id_producto, codigo_lote) VALUES (5, 1, 'L5'), (6, 1, 'L6'), (7, 1, 'L7')"
            )
        )
        conn.execute(text("INSERT INTO notificaciones (tipo, titulo, semaforo) VALUES ('X', 'x', 'ROJO')"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM lotes WHERE id_lote = 5"))
        conn.execute(text("UPDATE lotes SET id_lote = 60 WHERE id_lote = 6"))
        conn.execute(text("UPDATE lotes SET id_lote = id_lote, codigo_lote = 'L7b' WHERE id_lote = 7"))
        conn.execute(text("TRUNCATE notificaciones"))
    assert tumbas(engine) == [
        ("lotes", {"id_lote": 5}),
        ("lotes", {"id_lote": 6}),
        ("notificaciones", None),
    ]
    with engine.connect() as conn:
        # La tumba se sella como cualquier fila: el diferencial la lee por fecha_actualizacion.
        assert conn.scalar(
            text("SELECT bool_and(fecha_actualizacion IS NOT NULL) FROM registro_eliminaciones")
        )


def test_modo_restauracion_no_toca_nada(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL inventario.restaurando = 'on'"))
        conn.execute(
            text(
                "INSERT INTO productos (id_producto, codigo, nombre, fecha_creacion, fecha_actualizacion) "
                "VALUES (1, 'A', 'a', :v, :v)"
            ),
            {"v": VIEJA},
        )
        conn.execute(
            text("INSERT INTO lotes (id_lote, id_producto, codigo_lote) VALUES (5, 1, 'L5'), (6, 1, 'L6')")
        )
        conn.execute(text("UPDATE lotes SET id_lote = 60 WHERE id_lote = 6"))
        conn.execute(text("DELETE FROM lotes WHERE id_lote = 5"))
        conn.execute(text("TRUNCATE notificaciones"))
    with engine.connect() as conn:
        fechas = conn.execute(text("SELECT fecha_creacion, fecha_actualizacion FROM productos")).one()
        assert list(fechas) == [datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)] * 2  # el mismo instante
    assert tumbas(engine) == []
    # SET LOCAL: al terminar la transacción los triggers vuelven a actuar.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM lotes WHERE id_lote = 60"))
    assert tumbas(engine) == [("lotes", {"id_lote": 60})]


def test_todas_las_tablas_tienen_auditoria_y_fk_diferibles_sin_cascada(engine: Engine) -> None:
    with engine.connect() as conn:
        tablas = set(
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' "
                    # punto_restauracion no es un dato que se respalde: la escribe cada archivo de
                    # backup al aplicarse (ver modules/backup/dump.py).
                    "AND table_name NOT IN ('alembic_version', 'punto_restauracion')"
                )
            ).scalars()
        )
        assert {
            "productos",
            "lotes",
            "movimientos",
            "notificaciones",
            "usuarios",
            "registro_eliminaciones",
        } <= tablas
        con_columnas = set(
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND column_name IN ('fecha_creacion', 'fecha_actualizacion') "
                    "GROUP BY table_name HAVING count(*) = 2"
                )
            ).scalars()
        )
        # Un índice que sirva a `WHERE fecha_actualizacion >= corte` (la columna va primera).
        con_indice = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
                    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                    "WHERE a.attname = 'fecha_actualizacion'"
                )
            ).scalars()
        )
        con_trigger = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_proc p ON p.oid = t.tgfoid "
                    "WHERE t.tgname = 'auditoria_sellar' AND p.proname = 'auditoria_sellar' AND t.tgenabled = 'O'"
                )
            ).scalars()
        )
        assert tablas - con_columnas == set()
        assert tablas - con_indice == set()
        assert tablas - con_trigger == set()

        fks = conn.execute(
            text(
                "SELECT conrelid::regclass::text AS tabla, conname, condeferrable, confdeltype, confupdtype "
                "FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
            )
        ).all()
        assert len(fks) >= 4
        # 'a' = NO ACTION, 'r' = RESTRICT; nada de CASCADE ('c'), SET NULL ('n') ni SET DEFAULT ('d').
        malas = [
            fk
            for fk in fks
            if not fk.condeferrable or fk.confdeltype not in "ar" or fk.confupdtype not in "ar"
        ]
        assert malas == []
