"""`inventario demo`: datos de demostración coherentes, sin choques entre corridas, y su consola."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from inventario.demo import DemoError, generate
from inventario.modules.usuarios.service import ensure_first_admin
from inventario.postgres import DatabaseServer

TABLES = ("productos", "lotes", "movimientos", "notificaciones")


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def test_genera_cantidades_exactas_y_lotes_coherentes(engine: Engine) -> None:
    phases: list[str] = []
    counts = generate(engine, 50, 3, 500, seed=7, progress=lambda fase, filas, seg: phases.append(fase))
    assert {k: counts[k] for k in TABLES} == table_counts(engine)
    assert (counts["productos"], counts["lotes"], counts["movimientos"]) == (50, 150, 500)
    assert counts["notificaciones"] >= 1
    assert phases[0] == "productos" and "movimientos" in phases and phases[-1] == "estadísticas"
    with engine.connect() as conn:
        # Cada lote: cantidad == suma de sus movimientos, y nunca negativa.
        mismatched = conn.execute(
            text("""
            SELECT l.id_lote, l.cantidad, coalesce(sum(m.cantidad), 0)
            FROM lotes l LEFT JOIN movimientos m ON m.id_lote = l.id_lote
            GROUP BY l.id_lote HAVING l.cantidad <> coalesce(sum(m.cantidad), 0) OR l.cantidad < 0
        """)
        ).all()
        assert mismatched == []
        # El saldo tampoco es negativo en ningún momento, en el orden de los movimientos.
        min_running = conn.execute(
            text("""
            SELECT min(saldo) FROM (
                SELECT sum(cantidad) OVER (PARTITION BY id_lote ORDER BY id_movimiento) AS saldo
                FROM movimientos) s
        """)
        ).scalar_one()
        assert min_running >= 0
        first_types = (
            conn.execute(
                text("""
            SELECT DISTINCT ON (id_lote) tipo FROM movimientos ORDER BY id_lote, id_movimiento
        """)
            )
            .scalars()
            .all()
        )
        assert set(first_types) == {"ENTRADA"} and len(first_types) == 150
        by_type: dict[str, int] = dict(
            conn.execute(text("SELECT tipo, count(*) FROM movimientos GROUP BY tipo")).all()
        )
        assert set(by_type) == {"ENTRADA", "SALIDA", "AJUSTE"}
        signs = conn.execute(
            text("""
            SELECT bool_and(cantidad > 0) FILTER (WHERE tipo = 'ENTRADA'),
                   bool_and(cantidad < 0) FILTER (WHERE tipo = 'SALIDA')
            FROM movimientos
        """)
        ).one()
        assert signs == (True, True)
        # Un movimiento pertenece al producto de su lote.
        assert (
            conn.execute(
                text("""
            SELECT count(*) FROM movimientos m JOIN lotes l USING (id_lote)
            WHERE m.id_producto <> l.id_producto
        """)
            ).scalar_one()
            == 0
        )
        codes = conn.execute(text("SELECT count(DISTINCT codigo), count(*) FROM productos")).one()
        assert codes[0] == codes[1] == 50
        dates = conn.execute(
            text("""
            SELECT count(*) FILTER (WHERE fecha_vencimiento IS NULL),
                   count(*) FILTER (WHERE fecha_vencimiento < current_date),
                   count(*) FILTER (WHERE fecha_vencimiento > current_date + 365),
                   max(fecha_vencimiento) <= current_date + 3 * 366
            FROM lotes
        """)
        ).one()
        assert dates[0] > 0 and dates[1] > 0 and dates[2] > 0 and dates[3]
        units = conn.execute(text("SELECT count(DISTINCT unidad) FROM productos")).scalar_one()
        assert units > 3
        # Sin ADMIN en la base, firma el usuario `demo`, que no puede iniciar sesión.
        demo_user = conn.execute(
            text("SELECT id_usuario, activo FROM usuarios WHERE nombre_usuario = 'demo'")
        ).one()
        assert demo_user == (counts["id_usuario"], False)
        assert conn.execute(text("SELECT DISTINCT id_usuario FROM movimientos")).scalars().all() == [
            demo_user[0]
        ]


def test_dos_corridas_no_chocan_y_la_semilla_repite_los_datos(engine: Engine) -> None:
    # Un producto ajeno con un código de corrida alto: la numeración continúa después de él.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO productos (codigo, nombre) VALUES ('DEMO007-0000001', 'Ajeno')"))
    first = generate(engine, 30, 2, 200, seed=11)
    second = generate(engine, 30, 2, 200, seed=11)
    third = generate(engine, 30, 2, 200, seed=12)
    assert (first["corrida"], second["corrida"], third["corrida"]) == (8, 9, 10)
    assert table_counts(engine)["productos"] == 1 + 3 * 30
    with engine.connect() as conn:

        def run_data(corrida: int) -> Sequence[Any]:
            return conn.execute(
                text("""
                    SELECT p.nombre, p.unidad, p.stock_minimo, l.codigo_lote, l.fecha_vencimiento, l.cantidad
                    FROM productos p JOIN lotes l USING (id_producto)
                    WHERE p.codigo LIKE :prefijo ORDER BY p.codigo, l.codigo_lote
                """),
                {"prefijo": f"DEMO{corrida:03d}-%"},
            ).all()

        assert len(run_data(8)) == 60
        assert run_data(8) == run_data(9)
        assert run_data(8) != run_data(10)


def test_firma_el_primer_admin(engine: Engine) -> None:
    with Session(engine) as session:
        ensure_first_admin(session, "clave-admin-demo")
        counts = generate(session, 5, 1, 20, seed=1)
    with engine.connect() as conn:
        admin_id = conn.execute(
            text("SELECT id_usuario FROM usuarios WHERE nombre_usuario = 'admin'")
        ).scalar_one()
        users = conn.execute(text("SELECT DISTINCT id_usuario FROM movimientos")).scalars().all()
        assert conn.execute(text("SELECT count(*) FROM usuarios")).scalar_one() == 1
    assert counts["id_usuario"] == admin_id and users == [admin_id]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((0, 1, 1), "--productos debe estar entre 1 y"),
        ((1, 0, 1), "--lotes-por-producto debe estar entre 1 y 999"),
        ((1, 1, -1), "--movimientos debe estar entre 0 y"),
        ((1, 2, 20_001), "--movimientos: como máximo 10 000 por lote; con 2 lotes"),
    ],
)
def test_parametros_invalidos(engine: Engine, args: tuple[int, int, int], fragment: str) -> None:
    with pytest.raises(DemoError) as info:
        generate(engine, *args)
    assert fragment in str(info.value)
    assert table_counts(engine)["productos"] == 0


def cli_env(db: DatabaseServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUP_", "LOGS_", "DATABASE_"))}
    env.update(
        DATABASE_URL=db.url.render_as_string(hide_password=False),
        LOGS_PATH=str(tmp_path / "logs"),
        DATA_PATH=str(tmp_path / "data"),
        BACKUP_PATH=str(tmp_path / "backups"),
        INVENTARIO_ADMIN_PASSWORD="clave-admin-cli",
    )
    return env


def run_cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("inventario")
    return subprocess.run(
        [str(exe), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_consola_demo(fresh_db: DatabaseServer, engine: Engine, tmp_path: Path) -> None:
    env = cli_env(fresh_db, tmp_path)
    result = run_cli(
        tmp_path,
        env,
        "demo",
        "--productos",
        "40",
        "--lotes-por-producto",
        "2",
        "--movimientos",
        "300",
        "--semilla",
        "5",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "movimientos" in out and "300 filas" in out
    assert "Corrida DEMO001 (semilla 5)" in out
    assert table_counts(engine)["productos"] == 40
    with engine.connect() as conn:
        # La consola crea el admin inicial (como el servicio) y los movimientos son suyos.
        signer = (
            conn.execute(
                text("SELECT DISTINCT u.nombre_usuario FROM movimientos m JOIN usuarios u USING (id_usuario)")
            )
            .scalars()
            .all()
        )
    assert signer == ["admin"]
    assert (tmp_path / "logs" / "app.log").exists()

    bad = run_cli(tmp_path, env, "demo", "--productos", "0")
    assert bad.returncode == 2
    assert "--productos debe estar entre 1" in bad.stderr
