"""Cada medida compara dos lados en la misma corrida, alternándolos, y da la mediana."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from bench.carga import percentile
from bench.entorno import ADMIN_PASSWORD, Entorno, Servicio
from bench.memoria import Muestreo
from inventario import migrations
from inventario.database import make_engine
from inventario.demo import generate
from inventario.modules.alertas.service import generate_alerts, generate_on
from inventario.modules.backup.model import HistorialBackup
from inventario.modules.backup.service import BackupEnCurso, BackupService
from inventario.modules.logs.service import maintain


@dataclass
class Resultado:
    numero: int
    medida: str
    inventario: str
    referencia: str
    ratio: float | None
    objetivo: str
    cumple: bool | None
    datos: dict[str, Any] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def next_second() -> None:
    """Los nombres de backup llevan segundos: no medimos la espera de un nombre libre."""
    time.sleep(1.05 - (time.time() % 1.0))


def retire(ent: Entorno, row: HistorialBackup) -> None:
    """Saca un completo medido de la cadena (como si la retención lo hubiera borrado)."""
    path = ent.settings.backup_dir / row.nombre_archivo
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".manifest.json").unlink(missing_ok=True)
    with ent.runtime.session_factory() as session:
        session.execute(
            text(
                "UPDATE historial_backup SET eliminado = true, fecha_eliminacion = now() WHERE id_backup = :i"
            ),
            {"i": row.id_backup},
        )
        session.commit()


def pg_dump_gzip(ent: Entorno, out: Path, level: int) -> None:
    conninfo, env = ent.server.libpq()
    pg_dump = ent.runtime.pg_tools().path("pg_dump")
    command = (
        f"set -o pipefail; '{pg_dump}' --format=plain --no-owner --no-privileges --clean --if-exists "
        f"--encoding=UTF8 --dbname '{conninfo}' | gzip -{level} > '{out}'"
    )
    subprocess.run(["bash", "-c", command], check=True, env=env)


def psql_restore(ent: Entorno, database: str, files: list[Path]) -> None:
    conninfo, env = ent.server.libpq(database)
    psql = ent.runtime.pg_tools().path("psql")
    for path in files:
        command = f"set -o pipefail; gunzip -c '{path}' | '{psql}' -X -q -v ON_ERROR_STOP=1 --dbname '{conninfo}' > /dev/null"
        subprocess.run(["bash", "-c", command], check=True, env=env)


def m1_completo(ent: Entorno, reps: int) -> tuple[Resultado, HistorialBackup]:
    service = BackupService(ent.runtime)
    ours: list[float] = []
    ref: list[float] = []
    reference = ent.home / "referencia.sql.gz"
    last: HistorialBackup | None = None
    # Los dos lados con la misma prioridad de CPU: la referencia corre con la de la shell. Con la de
    # fábrica (nice 19, SCHED_IDLE) el COMPLETO cede la CPU a cualquier otro proceso de la máquina:
    # en una máquina compartida esta medida mediría la carga ajena. Lo que la prioridad cuesta y
    # ahorra con la tienda ocupada lo mide la 4; aquí se comparan los motores.
    settings = ent.settings
    saved = (settings.BACKUP_PRIORIDAD, settings.BACKUP_CPU_OCIOSA)
    settings.BACKUP_PRIORIDAD, settings.BACKUP_CPU_OCIOSA = 0, False
    try:
        for _ in range(reps):
            next_second()
            seconds, row = timed(lambda: service.run("COMPLETO", "BENCH"))
            ours.append(seconds)
            if last is not None:
                retire(ent, last)
            last = row
            seconds, _ = timed(lambda: pg_dump_gzip(ent, reference, ent.settings.BACKUP_GZIP_NIVEL))
            ref.append(seconds)
    finally:
        settings.BACKUP_PRIORIDAD, settings.BACKUP_CPU_OCIOSA = saved
    assert last is not None
    ratio = median(ours) / median(ref)
    size_ratio = (last.tamanio_bytes or 0) / reference.stat().st_size
    return (
        Resultado(
            1,
            "Backup COMPLETO (tiempo)",
            f"{median(ours):.2f} s, {last.tamanio_legible} (tamaño {size_ratio:.3f} del de gzip)",
            f"pg_dump | gzip -{ent.settings.BACKUP_GZIP_NIVEL}: {median(ref):.2f} s, {reference.stat().st_size / 1048576:.2f} MB",
            ratio,
            "≤ 0.60, tamaño ≤ 1.03",
            ratio <= 0.60 and size_ratio <= 1.03,
            {
                "inventario_s": ours,
                "referencia_s": ref,
                "bytes": last.tamanio_bytes,
                "bytes_referencia": reference.stat().st_size,
                "ratio_tamanio": size_ratio,
                "prioridad": "la misma que la referencia (BACKUP_PRIORIDAD=0, sin SCHED_IDLE)",
            },
        ),
        last,
    )


def change_one_percent(ent: Entorno, fraction: float = 0.01) -> dict[str, int]:
    """1% (o `fraction`) de las filas: altas, modificaciones y bajas, repartidas como en una tienda real."""
    with ent.runtime.engine.begin() as conn:
        total = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM productos) + (SELECT count(*) FROM lotes) + (SELECT count(*) FROM movimientos)"
            )
        ).scalar_one()
        n = max(3, int(total * fraction))
        third = n // 3
        user = conn.execute(text("SELECT min(id_usuario) FROM usuarios")).scalar_one()
        inserted = conn.execute(
            text(
                "INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, motivo, id_usuario) "
                "SELECT 'ENTRADA', id_producto, id_lote, 1, 'bench', :u FROM lotes ORDER BY random() LIMIT :n"
            ),
            {"u": user, "n": third},
        ).rowcount
        updated = conn.execute(
            text(
                "UPDATE lotes SET cantidad = cantidad + 1 WHERE id_lote IN "
                "(SELECT id_lote FROM lotes ORDER BY random() LIMIT :n)"
            ),
            {"n": third // 2},
        ).rowcount
        updated += conn.execute(
            text(
                "UPDATE movimientos SET motivo = 'corregido' WHERE id_movimiento IN "
                "(SELECT id_movimiento FROM movimientos ORDER BY random() LIMIT :n)"
            ),
            {"n": third - third // 2},
        ).rowcount
        deleted = conn.execute(
            text(
                "DELETE FROM movimientos WHERE id_movimiento IN "
                "(SELECT id_movimiento FROM movimientos WHERE motivo IS DISTINCT FROM 'bench' ORDER BY random() LIMIT :n)"
            ),
            {"n": n - 2 * third},
        ).rowcount
    return {"filas_totales": int(total), "altas": inserted, "modificaciones": updated, "bajas": deleted}


def m2_diferencial(ent: Entorno, reps: int, base: HistorialBackup) -> tuple[Resultado, HistorialBackup, Path]:
    changes = change_one_percent(ent)
    service = BackupService(ent.runtime)
    diffs: list[float] = []
    fulls: list[float] = []
    diff_row = full_row = None
    kept_full = ent.home / "completo_final.sql.gz"
    for _ in range(reps):
        next_second()
        seconds, diff_row = timed(lambda: service.run("DIFERENCIAL", "BENCH"))
        assert diff_row.tipo == "DIFERENCIAL" and diff_row.id_backup_base == base.id_backup
        diffs.append(seconds)
        next_second()
        seconds, full_row = timed(lambda: service.run("COMPLETO", "BENCH"))
        fulls.append(seconds)
        # Se conserva el último completo del estado final para la medida 3 y se retira de la cadena.
        (ent.settings.backup_dir / full_row.nombre_archivo).replace(kept_full)
        retire(ent, full_row)
    assert diff_row is not None and full_row is not None
    time_ratio = median(diffs) / median(fulls)
    size_ratio = diff_row.tamanio_bytes / full_row.tamanio_bytes
    return (
        Resultado(
            2,
            f"Backup DIFERENCIAL tras cambiar el 1% ({changes['altas']} altas, {changes['modificaciones']} modif., {changes['bajas']} bajas)",
            f"{median(diffs):.3f} s, {diff_row.tamanio_legible}",
            f"COMPLETO: {median(fulls):.2f} s, {full_row.tamanio_legible}",
            time_ratio,
            "tiempo ≤ 0.02 y tamaño ≤ 0.015",
            time_ratio <= 0.02 and size_ratio <= 0.015,
            {"diferencial_s": diffs, "completo_s": fulls, "ratio_tamanio": size_ratio, "cambios": changes},
        ),
        diff_row,
        kept_full,
    )


def restore_side_by_side(
    ent: Entorno, prefix: str, chain: list[Path], fresh: Path, reps: int
) -> tuple[list[float], list[float], bool]:
    """Restaura con `gunzip | psql` la cadena y un completo fresco del mismo estado en bases nuevas,
    alternando; devuelve los segundos de cada lado y si las dos bases tienen los mismos datos
    (movimientos, stock y la secuencia de movimientos)."""
    ours: list[float] = []
    ref: list[float] = []
    counts: dict[str, list[list[Any]]] = {}
    for i in range(reps):
        for side, files, bucket in (("cadena", chain, ours), ("fresco", [fresh], ref)):
            name = f"{prefix}_{side}_{i}"
            ent.new_database(name)
            seconds, _ = timed(partial(psql_restore, ent, name, files))
            bucket.append(seconds)
            with ent.connect(name) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM movimientos), (SELECT sum(cantidad) FROM lotes), "
                    "(SELECT last_value FROM movimientos_id_movimiento_seq)"
                ).fetchone()
            assert row is not None  # la consulta siempre da una fila
            counts.setdefault(side, []).append(list(row))
            ent.drop_database(name)
    same = all(c == counts["fresco"][0] for c in counts["cadena"] + counts["fresco"])
    return ours, ref, same


def m3_restauracion(
    ent: Entorno, reps: int, base: HistorialBackup, diff: HistorialBackup, fresh_full: Path
) -> Resultado:
    directory = ent.settings.backup_dir
    chain = [directory / base.nombre_archivo, directory / diff.nombre_archivo]
    ours, ref, same = restore_side_by_side(ent, "bench_restaurar", chain, fresh_full, reps)
    ratio = median(ours) / median(ref)
    return Resultado(
        3,
        "Restaurar COMPLETO + DIFERENCIAL con psql",
        f"{median(ours):.2f} s",
        f"completo fresco del mismo estado: {median(ref):.2f} s",
        ratio,
        "≤ 1.2 (y mismos datos)",
        ratio <= 1.2 and same,
        {"cadena_s": ours, "fresco_s": ref, "mismos_datos": same},
    )


# Cliente HTTP y bucle del generador de carga (`python -m bench --generador`): ver bench/carga.py.
GENERADOR = "aiohttp+uvloop"


def run_load(servicio: Servicio, lots: str, clients: int, requests: int, seconds: float) -> dict[str, Any]:
    cliente, bucle = GENERADOR.split("+")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.carga",
            "--cliente",
            cliente,
            "--bucle",
            bucle,
            "--url",
            servicio.url,
            "--token",
            servicio.token,
            "--clientes",
            str(clients),
            "--peticiones",
            str(requests),
            "--segundos",
            str(seconds),
            "--lotes",
            lots,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    return json.loads(out.stdout)


def m4_latencia(
    ent: Entorno, servicio: Servicio, reps: int, clients: int, requests: int, seconds: float
) -> Resultado:
    lots = lotes_para_carga(ent)
    quiet: list[dict[str, Any]] = []
    busy: list[dict[str, Any]] = []
    backups = [0]
    for _ in range(reps):
        quiet.append(run_load(servicio, lots, clients, requests, seconds))
        stop = threading.Event()

        def backup_loop(stop: threading.Event = stop) -> None:
            service = BackupService(ent.runtime)
            while not stop.is_set():
                try:
                    row = service.run("COMPLETO", "BENCH")
                    backups[0] += 1
                    retire(ent, row)
                except BackupEnCurso:
                    pass
                next_second()

        worker = threading.Thread(target=backup_loop, daemon=True)
        worker.start()
        time.sleep(0.5)  # que pg_dump ya esté trabajando cuando llega la carga
        busy.append(run_load(servicio, lots, clients, requests, seconds))
        stop.set()
        worker.join(120)

    def agg(runs: list[dict[str, Any]], kind: str, key: str) -> float:
        return median([r[kind][key] for r in runs])

    errors = sum(r[k]["errores"] for r in quiet + busy for k in ("lectura", "escritura"))
    ratios = {k: agg(busy, k, "p95_ms") / agg(quiet, k, "p95_ms") for k in ("lectura", "escritura")}
    worst = max(ratios.values())
    return Resultado(
        4,
        f"Latencia con {clients} clientes (lectura GET /productos, escritura POST /movimientos)",
        "con backup: "
        + ", ".join(
            f"{k} p50 {agg(busy, k, 'p50_ms'):.0f} / p95 {agg(busy, k, 'p95_ms'):.0f} ms" for k in ratios
        ),
        "sin backup: "
        + ", ".join(
            f"{k} p50 {agg(quiet, k, 'p50_ms'):.0f} / p95 {agg(quiet, k, 'p95_ms'):.0f} ms" for k in ratios
        ),
        worst,
        "p95 ≤ 1.15, cero errores",
        worst <= 1.15 and errors == 0,
        {
            "sin_backup": quiet,
            "con_backup": busy,
            "ratios_p95": ratios,
            "errores": errors,
            "backups_durante_carga": backups[0],
        },
    )


def m5_memoria(servicio: Servicio, idle_seconds: float = 2.0) -> Resultado:
    """RSS del servicio (y sus hijos, p. ej. pg_dump) en reposo, durante un COMPLETO pedido por la
    API y durante la descarga de ese archivo."""
    with Muestreo(servicio.proc.pid) as idle:
        time.sleep(idle_seconds)
    with Muestreo(servicio.proc.pid) as during_backup:
        response = httpx.post(
            f"{servicio.url}/api/v1/backup/ejecutar-completo",
            params={"esperar": "true"},
            headers=servicio.headers,
            timeout=1800,
        )
    response.raise_for_status()
    backup = response.json()
    downloaded = 0
    with Muestreo(servicio.proc.pid) as during_download:
        with httpx.stream(
            "GET",
            f"{servicio.url}/api/v1/backup/{backup['id_backup']}/descargar",
            headers=servicio.headers,
            timeout=1800,
        ) as stream:
            stream.raise_for_status()
            for chunk in stream.iter_bytes():
                downloaded += len(chunk)
    assert downloaded == backup["tamanio_bytes"], (downloaded, backup["tamanio_bytes"])
    mb = 1024 * 1024
    extra_backup = (during_backup.max_arbol - idle.max_arbol) / mb
    extra_download = (during_download.max_arbol - idle.max_arbol) / mb
    worst = max(extra_backup, extra_download)
    return Resultado(
        5,
        f"Memoria (RSS) del servicio: COMPLETO por la API y descarga de {backup['tamanio_legible']}",
        f"pico backup {during_backup.max_arbol / mb:.0f} MB (+{extra_backup:.0f}), "
        f"pico descarga {during_download.max_arbol / mb:.0f} MB (+{extra_download:.0f})",
        f"en reposo: {idle.max_arbol / mb:.0f} MB (servicio + hijos)",
        None,
        "< 150 MB más que en reposo",
        worst < 150,
        {
            "reposo_bytes": idle.max_arbol,
            "backup_pico_bytes": during_backup.max_arbol,
            "backup_pico_solo_servicio_bytes": during_backup.max_proceso,
            "descarga_pico_bytes": during_download.max_arbol,
            "extra_mb": worst,
            "archivo_bytes": backup["tamanio_bytes"],
            "muestras": during_backup.muestras + during_download.muestras,
        },
    )


def _base_de_alertas(ent: Entorno, lots: int) -> tuple[str, Engine]:
    """Base propia con `lots` lotes (5 por producto) y 2 movimientos por lote (lotes con stock)."""
    name = f"bench_alertas_{lots}"
    db = ent.new_database(name)
    engine = make_engine(db.url, ent.settings.ZONA_HORARIA)
    migrations.upgrade(engine)
    generate(engine, max(1, lots // 5), 5, 2 * lots, seed=99)  # con ANALYZE, como una base en uso
    with ent.connect(name) as conn:
        conn.execute("VACUUM ANALYZE")
    return name, engine


def _alertas_una_vez(ent: Entorno, name: str, engine: Engine) -> float:
    """Una primera corrida del día (todas las alertas nuevas) que se deshace: repetible."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            seconds = generate_on(conn, ent.settings.ALERTAS_DIAS_VENCIMIENTO).segundos
        finally:
            tx.rollback()
    with ent.connect(name) as conn:
        conn.execute("VACUUM notificaciones")  # las filas deshechas no estorban a la siguiente
    return seconds


def _alertas_confirmadas(ent: Entorno, engine: Engine) -> tuple[float, dict[str, int]]:
    """La corrida de verdad (confirmada) y la repetición del mismo día, que no crea nada."""
    first = generate_alerts(engine, ent.settings.ALERTAS_DIAS_VENCIMIENTO)
    again = generate_alerts(engine, ent.settings.ALERTAS_DIAS_VENCIMIENTO)
    assert again.total == 0, "la repetición del mismo día no debe crear alertas"
    return again.segundos, {
        "alertas": first.total,
        "vencidos": first.lotes_vencidos,
        "por_vencer": first.lotes_por_vencer,
        "sin_stock": first.sin_stock,
        "stock_bajo": first.stock_bajo,
    }


LOG_FAMILIES = ("app.log", "error.log", "health.log", "sesiones.log")


def _arbol_de_logs(directory: Path, files: int, today: date) -> None:
    """`files` logs rotados (2 KB de texto), repartidos por igual en 4 familias y 150 días: la misma
    mezcla de edades a cualquier tamaño, para comparar tamaños."""
    directory.mkdir(parents=True)
    line = b"2025-11-25 10:00:00 INFO inventario.http GET /api/v1/productos 200 12 ms usuario=caja1\n"
    body = line * (2048 // len(line))
    seen: dict[tuple[str, int], int] = {}
    for i in range(files):
        family = LOG_FAMILIES[i % len(LOG_FAMILIES)]
        day = 1 + (i * 150) // files
        rotation = seen.get((family, day), 0)
        seen[(family, day)] = rotation + 1
        written = today - timedelta(days=day)
        path = directory / (f"{family}.{written.isoformat()}" + (f".{rotation}" if rotation else ""))
        path.write_bytes(body)
        noon = datetime.combine(written, datetime.min.time()).timestamp() + 43200
        os.utime(path, (noon, noon))  # como un log rotado de verdad: escrito por última vez ese día


def _logs_en_arbol(ent: Entorno, files: int) -> tuple[float, dict[str, int]]:
    directory = ent.home / f"logs_bench_{files}"
    shutil.rmtree(directory, ignore_errors=True)
    now = datetime.now(ent.settings.tz)
    _arbol_de_logs(directory, files, now.date())
    settings = ent.settings.model_copy(update={"LOGS_PATH": str(directory)})
    try:
        seconds, result = timed(lambda: maintain(settings, now=now))
        assert not result.errores, result.errores
        return seconds, {"comprimidos": len(result.comprimidos), "eliminados": len(result.eliminados)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def m6_mantenimiento(ent: Entorno, lots: int = 1_000_000, files: int = 20_000, reps: int = 3) -> Resultado:
    """Segundos de `alertas_diarias` y `logs_maintenance` a tamaño completo y a un cuarto: si el
    costo por unidad no crece con el tamaño, escalan de forma lineal.

    A 100 000 lotes la corrida entera dura décimas de segundo y el costo fijo y el ruido dominan el
    cociente; por eso el tamaño completo es el de una cadena grande (1 M de lotes) y cada lado se
    repite `reps` veces, alternando tamaños, y se toma la mediana. Cada corrida de alertas es una
    primera corrida del día (se deshace la transacción); cada corrida de logs, sobre un árbol nuevo."""
    quarter_lots, quarter_files = max(1, lots // 4), max(1, files // 4)
    bases = {n: _base_de_alertas(ent, n) for n in (lots, quarter_lots)}
    alert: dict[int, list[float]] = {lots: [], quarter_lots: []}
    logs: dict[int, list[float]] = {files: [], quarter_files: []}
    logs_counts: dict[str, int] = {}
    try:
        for name, engine in bases.values():
            _alertas_una_vez(ent, name, engine)  # calentar caché y planes, fuera de la medida
        for _ in range(reps):
            for n, (name, engine) in bases.items():
                alert[n].append(_alertas_una_vez(ent, name, engine))
            for n in (files, quarter_files):
                seconds, counts = _logs_en_arbol(ent, n)
                logs[n].append(seconds)
                if n == files:
                    logs_counts = counts
        alert_again, alert_counts = _alertas_confirmadas(ent, bases[lots][1])
    finally:
        for name, engine in bases.values():
            engine.dispose()
            ent.drop_database(name)
    alert_full, alert_quarter = median(alert[lots]), median(alert[quarter_lots])
    logs_full, logs_quarter = median(logs[files]), median(logs[quarter_files])
    # Costo por unidad a tamaño completo / costo por unidad a un cuarto: ≈ 1 si es lineal.
    alert_growth = (alert_full / lots) / (alert_quarter / quarter_lots)
    logs_growth = (logs_full / files) / (logs_quarter / quarter_files)
    worst = max(alert_growth, logs_growth)
    return Resultado(
        6,
        f"alertas_diarias sobre {lots} lotes; logs_maintenance sobre {files} archivos (mediana de {reps})",
        f"alertas {alert_full:.2f} s (repetición {alert_again:.2f} s, {alert_counts['alertas']} alertas); "
        f"logs {logs_full:.2f} s ({logs_counts['comprimidos']} comprimidos, {logs_counts['eliminados']} eliminados)",
        f"a un cuarto del tamaño: alertas {alert_quarter:.2f} s, logs {logs_quarter:.2f} s",
        worst,
        "lineal: costo por unidad ≤ 1.5× el de un cuarto",
        worst <= 1.5,
        {
            "lotes": lots,
            "archivos": files,
            "alertas_s": alert_full,
            "alertas_corridas_s": alert[lots],
            "alertas_repeticion_s": alert_again,
            "alertas_cuarto_s": alert_quarter,
            "alertas_cuarto_corridas_s": alert[quarter_lots],
            "alertas": alert_counts,
            "crecimiento_alertas": alert_growth,
            "logs_s": logs_full,
            "logs_corridas_s": logs[files],
            "logs_cuarto_s": logs_quarter,
            "logs_cuarto_corridas_s": logs[quarter_files],
            "logs": logs_counts,
            "crecimiento_logs": logs_growth,
        },
    )


CONSOLA_PAGINAS = ("panel", "backups", "tareas", "notificaciones", "inventario", "usuarios")


def _entrar_consola(client: httpx.Client) -> None:
    """Inicia sesión en la consola como un navegador: token CSRF del formulario y cookie."""
    import re

    page = client.get("/consola/entrar")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, "el formulario de entrada no trae token CSRF"
    response = client.post(
        "/consola/entrar",
        data={"csrf": match.group(1), "nombre_usuario": "admin", "password": ADMIN_PASSWORD},
    )
    response.raise_for_status()
    assert "consola_sesion" in client.cookies, "la consola no abrió la sesión"


def m8_consola(servicio: Servicio, veces: int = 20) -> Resultado:
    """Tiempo de cada página de la consola: en el servidor (cabecera `Server-Timing`, lo que fija el
    objetivo) y de reloj en el cliente, mediana y p95 de `veces` peticiones seguidas en loopback;
    al lado, `GET /health` (lo mínimo que cuesta una petición que consulta la base)."""

    def p95(values: list[float]) -> float:
        return percentile(values, 0.95) or 0.0

    reloj: dict[str, list[float]] = {}
    servidor: dict[str, list[float]] = {}
    with httpx.Client(base_url=servicio.url, timeout=30, follow_redirects=True) as client:
        _entrar_consola(client)
        for ruta in ("/health", *(f"/consola/{p}" for p in CONSOLA_PAGINAS)):
            client.get(ruta).raise_for_status()  # calentar (plantillas, planes de consulta)
            for _ in range(veces):
                started = time.perf_counter()
                response = client.get(ruta)
                reloj.setdefault(ruta, []).append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, f"{ruta}: {response.status_code}"
                timing = response.headers.get("server-timing", "")
                if timing.startswith("app;dur="):
                    servidor.setdefault(ruta, []).append(float(timing.split("=", 1)[1]))

    paginas = {p: servidor[f"/consola/{p}"] for p in CONSOLA_PAGINAS}
    peor = max(paginas, key=lambda p: median(paginas[p]))
    peor_ms = median(paginas[peor])
    return Resultado(
        8,
        "Páginas de la consola web, tiempo en el servidor (mediana / p95, ms)",
        ", ".join(f"{p} {median(v):.0f} / {p95(v):.0f}" for p, v in paginas.items()),
        f"GET /health (reloj del cliente) {median(reloj['/health']):.0f} / {p95(reloj['/health']):.0f} ms",
        peor_ms / 100.0,
        "mediana ≤ 100 ms por página",
        peor_ms <= 100.0,
        {
            "servidor_ms": {p: {"mediana": median(v), "p95": p95(v)} for p, v in paginas.items()},
            "reloj_ms": {r: {"mediana": median(v), "p95": p95(v)} for r, v in reloj.items()},
            "peor": peor,
            "veces": veces,
        },
    )


# ------------------------------------------------------------------ incrementales (issue 13)


def _cpu() -> float:
    """CPU de este proceso (compresión y escritura; la del servidor PostgreSQL no entra)."""
    usage = os.times()
    return usage.user + usage.system


def _ventas(ent: Entorno, n: int) -> None:
    """`n` ventas: un movimiento y el stock de su lote, como en el mostrador."""
    with ent.runtime.engine.begin() as conn:
        user = conn.execute(text("SELECT min(id_usuario) FROM usuarios")).scalar_one()
        conn.execute(
            text(
                "WITH l AS (SELECT id_producto, id_lote FROM lotes ORDER BY random() LIMIT :n), "
                "m AS (INSERT INTO movimientos (tipo, id_producto, id_lote, cantidad, motivo, id_usuario) "
                "SELECT 'ENTRADA', id_producto, id_lote, 1, 'venta', :u FROM l RETURNING id_lote) "
                "UPDATE lotes SET cantidad = cantidad + 1 WHERE id_lote IN (SELECT id_lote FROM m)"
            ),
            {"n": n, "u": user},
        )


def m9_incrementales(ent: Entorno, dia: int, cadena: int, reps: int = 1) -> list[Resultado]:
    """9: un incremental tras cambiar el 0,1 % contra un completo (`reps` pares, medianas); 10: un
    día de `dia` incrementales contra un diferencial de los mismos cambios; 11: restaurar completo
    + diferencial + `cadena` incrementales contra un completo fresco del mismo estado."""
    service = BackupService(ent.runtime)
    directory = ent.settings.backup_dir
    results = []
    # 9. Por repetición: un completo nuevo (base del día), el 0,1 % y el incremental. Alternados y
    # con la mediana, como las demás medidas: un incremental dura decenas de milisegundos y una
    # sola muestra en una máquina compartida es casi todo ruido.
    fulls: list[float] = []
    incrs: list[float] = []
    full = incr = None
    for _ in range(max(1, reps)):
        next_second()
        seconds, full = timed(lambda: service.run("COMPLETO", "BENCH"))
        fulls.append(seconds)
        changes = change_one_percent(ent, 0.001)
        next_second()
        seconds, incr = timed(lambda: service.run("INCREMENTAL", "BENCH"))
        assert incr.tipo == "INCREMENTAL", incr.nota
        incrs.append(seconds)
    assert full is not None and incr is not None
    full_seconds, incr_seconds = median(fulls), median(incrs)
    time_ratio = incr_seconds / full_seconds
    size_ratio = incr.tamanio_bytes / full.tamanio_bytes
    results.append(
        Resultado(
            9,
            f"INCREMENTAL tras cambiar el 0,1% ({changes['altas']} altas, {changes['modificaciones']} modif., {changes['bajas']} bajas)",
            f"{incr_seconds:.3f} s, {incr.tamanio_legible}",
            f"COMPLETO de la misma base: {full_seconds:.2f} s, {full.tamanio_legible}",
            time_ratio,
            "tiempo ≤ 0.01 y tamaño ≤ 0.01",
            time_ratio <= 0.01 and size_ratio <= 0.01,
            {
                "incremental_s": incrs,
                "completo_s": fulls,
                "ratio_tamanio": size_ratio,
                "cambios": changes,
            },
        )
    )
    # 10. Un día: `dia` incrementales con ventas entre ellos, y un diferencial de todo el día.
    per_slot = max(1, changes["filas_totales"] // 20_000)  # ~50 ventas por cuarto de hora a escala normal
    incr_bytes, incr_cpu, incr_wall = 0, 0.0, 0.0
    for _ in range(dia):
        _ventas(ent, per_slot)
        next_second()
        cpu = _cpu()
        seconds, row = timed(lambda: service.run("INCREMENTAL", "BENCH"))
        incr_cpu += _cpu() - cpu
        incr_wall += seconds
        incr_bytes += row.tamanio_bytes or 0
    next_second()
    cpu = _cpu()
    diff_seconds, diff = timed(lambda: service.run("DIFERENCIAL", "BENCH"))
    diff_cpu = _cpu() - cpu
    ratio = incr_bytes / (diff.tamanio_bytes or 1)
    results.append(
        Resultado(
            10,
            f"Un día: {dia} INCREMENTALES ({per_slot} ventas cada uno) contra un DIFERENCIAL",
            f"{incr_bytes / 1048576:.2f} MB, {incr_wall:.1f} s, CPU del proceso {incr_cpu:.1f} s",
            f"DIFERENCIAL: {(diff.tamanio_bytes or 0) / 1048576:.2f} MB, {diff_seconds:.2f} s, CPU {diff_cpu:.2f} s",
            ratio,
            "(se informa: bytes ratio)",
            None,
            {
                "incrementales_bytes": incr_bytes,
                "incrementales_s": incr_wall,
                "incrementales_cpu_s": incr_cpu,
                "diferencial_bytes": diff.tamanio_bytes,
                "diferencial_s": diff_seconds,
                "diferencial_cpu_s": diff_cpu,
                "ventas_por_incremental": per_slot,
            },
        )
    )
    # 11. `cadena` incrementales más tras el diferencial; restaurar la cadena contra un completo fresco.
    links = [full, diff]
    for _ in range(cadena):
        _ventas(ent, per_slot)
        next_second()
        links.append(service.run("INCREMENTAL", "BENCH"))
    fresh = ent.home / "completo_fresco_cadena.sql.gz"
    pg_dump_gzip(ent, fresh, ent.settings.BACKUP_GZIP_NIVEL)
    files = [directory / r.nombre_archivo for r in links]
    ours, ref, same = restore_side_by_side(ent, "bench_incr", files, fresh, 2)
    ratio = median(ours) / median(ref)
    results.append(
        Resultado(
            11,
            f"Restaurar COMPLETO + DIFERENCIAL + {cadena} INCREMENTALES con psql",
            f"{median(ours):.2f} s ({len(files)} archivos)",
            f"completo fresco del mismo estado: {median(ref):.2f} s",
            ratio,
            "≤ 1.3 (y mismos datos)",
            ratio <= 1.3 and same,
            {"cadena_s": ours, "fresco_s": ref, "mismos_datos": same, "archivos": len(files)},
        )
    )
    return results


def m12_latencia_incrementales(
    ent: Entorno, servicio: Servicio, reps: int, clients: int, requests: int, seconds: float, cadencia: float
) -> Resultado:
    """12: la misma carga que la medida 4, sin backups y con un INCREMENTAL cada `cadencia` segundos.

    El objetivo habla de "cada minuto"; una fase de carga dura menos que eso, así que el minuto se
    comprime: los incrementales se piden cada `cadencia` s (5 s a escala normal: 12 veces más a menudo
    que el objetivo, más exigente). Se piden al servicio por la API (`POST /backup/ejecutar`,
    `tipo=INCREMENTAL`, `esperar=true`): corren dentro del proceso del servicio, como el job
    `backup_incremental`, y compiten con la carga por su CPU y su pool de conexiones."""
    lots = lotes_para_carga(ent)
    api = httpx.Client(base_url=servicio.url, headers=servicio.headers, timeout=600)

    def ejecutar(tipo: str) -> httpx.Response:
        return api.post("/api/v1/backup/ejecutar", params={"tipo": tipo, "esperar": "true"})

    # La base de la cadena, fuera de la medida: sin completo, el primer incremental sería un COMPLETO.
    next_second()
    ejecutar("COMPLETO").raise_for_status()
    quiet: list[dict[str, Any]] = []
    busy: list[dict[str, Any]] = []
    incr_seconds: list[float] = []
    outcomes: dict[str, int] = {}
    try:
        for _ in range(reps):
            quiet.append(run_load(servicio, lots, clients, requests, seconds))
            stop = threading.Event()

            def incremental_loop(stop: threading.Event = stop) -> None:
                slot = time.monotonic()
                while not stop.is_set():
                    elapsed, response = timed(lambda: ejecutar("INCREMENTAL"))
                    tipo = response.json().get("tipo") if response.status_code == 201 else None
                    key = f"{response.status_code} {tipo or ''}".strip()
                    outcomes[key] = outcomes.get(key, 0) + 1
                    if response.status_code == 201:
                        incr_seconds.append(elapsed)
                    slot += cadencia  # cadencia fija; si uno tarda más, el siguiente sale enseguida
                    stop.wait(max(0.0, slot - time.monotonic()))

            worker = threading.Thread(target=incremental_loop, daemon=True)
            worker.start()
            busy.append(run_load(servicio, lots, clients, requests, seconds))
            stop.set()
            worker.join(600)
    finally:
        api.close()

    def agg(runs: list[dict[str, Any]], kind: str, key: str) -> float:
        return median([r[kind][key] for r in runs])

    errors = sum(r[k]["errores"] for r in quiet + busy for k in ("lectura", "escritura"))
    ratios = {k: agg(busy, k, "p95_ms") / agg(quiet, k, "p95_ms") for k in ("lectura", "escritura")}
    worst = max(ratios.values())
    done = len(incr_seconds)
    return Resultado(
        12,
        f"Latencia con {clients} clientes e INCREMENTAL cada {cadencia:g} s (el minuto comprimido)",
        f"con incrementales ({done}, mediana {median(incr_seconds) if done else 0:.2f} s): "
        + ", ".join(
            f"{k} p50 {agg(busy, k, 'p50_ms'):.0f} / p95 {agg(busy, k, 'p95_ms'):.0f} ms" for k in ratios
        ),
        "sin backups: "
        + ", ".join(
            f"{k} p50 {agg(quiet, k, 'p50_ms'):.0f} / p95 {agg(quiet, k, 'p95_ms'):.0f} ms" for k in ratios
        ),
        worst,
        "p95 ≤ 1.1 del reposo, cero errores",
        worst <= 1.1 and errors == 0 and done > 0,
        {
            "sin_backup": quiet,
            "con_incrementales": busy,
            "ratios_p95": ratios,
            "errores": errors,
            "cadencia_s": cadencia,
            "incrementales": done,
            "incremental_s": incr_seconds,
            "respuestas": outcomes,
        },
    )


# ------------------------------------------------------------------ linealidad (issue 17)


def m14_linealidad(
    ent: Entorno, escala: tuple[int, int, int], reps: int, log: Callable[[str], object] = print
) -> Resultado:
    """14: costo por fila del COMPLETO, del DIFERENCIAL y de la restauración en dos bases, una de
    `escala` (productos, lotes por producto, movimientos) y otra de un cuarto. Cada tamaño corre las
    medidas 1, 2 y 3 (las mismas funciones) en su propia base; los tamaños se alternan medida a
    medida. Por fila: COMPLETO y restauración sobre las filas de las tres tablas del dominio, el
    DIFERENCIAL sobre las filas cambiadas (el 1 %). Lineal si el costo por fila del grande es
    ≤ 1.2× el del chico."""
    from bench.entorno import base_aparte, cerrar_base_aparte

    productos, lotes, movimientos = escala
    sizes = {
        "cuarto": (max(1, productos // 4), lotes, max(1, movimientos // 4)),
        "completo": escala,
    }
    bases: dict[str, Entorno] = {}
    try:
        for key, (p, lp, m) in sizes.items():
            bases[key] = base_aparte(ent, f"bench_lineal_{key}", p, lp, m, log)
        full: dict[str, tuple[Resultado, HistorialBackup]] = {}
        diff: dict[str, tuple[Resultado, HistorialBackup, Path]] = {}
        restore: dict[str, Resultado] = {}
        for key, sub in bases.items():
            full[key] = m1_completo(sub, reps)
        for key, sub in bases.items():
            diff[key] = m2_diferencial(sub, reps, full[key][1])
        for key, sub in bases.items():
            restore[key] = m3_restauracion(sub, reps, full[key][1], diff[key][1], diff[key][2])
    finally:
        for sub in bases.values():
            cerrar_base_aparte(ent, sub)

    per_row: dict[str, dict[str, float]] = {}
    reference_per_row: dict[str, dict[str, float]] = {}
    detail: dict[str, dict[str, Any]] = {}
    for key in sizes:
        changes = diff[key][0].datos["cambios"]
        rows = changes["filas_totales"]
        changed = changes["altas"] + changes["modificaciones"] + changes["bajas"]
        full_s = median(full[key][0].datos["inventario_s"])
        diff_s = median(diff[key][0].datos["diferencial_s"])
        restore_s = median(restore[key].datos["cadena_s"])
        per_row[key] = {
            "completo": full_s / rows,
            "diferencial": diff_s / changed,
            "restauracion": restore_s / rows,
        }
        # La referencia (pg_dump | gzip, psql de un completo fresco) a los mismos tamaños: si ella
        # tampoco es lineal, el costo extra es de PostgreSQL, no nuestro.
        reference_per_row[key] = {
            "completo": median(full[key][0].datos["referencia_s"]) / rows,
            "restauracion": median(restore[key].datos["fresco_s"]) / rows,
        }
        detail[key] = {
            "filas": rows,
            "filas_cambiadas": changed,
            "completo_s": full_s,
            "diferencial_s": diff_s,
            "restauracion_s": restore_s,
            "completo_bytes": full[key][0].datos["bytes"],
            "mismos_datos": restore[key].datos["mismos_datos"],
        }
    ratios = {k: per_row["completo"][k] / per_row["cuarto"][k] for k in per_row["completo"]}
    reference_ratios = {
        k: reference_per_row["completo"][k] / reference_per_row["cuarto"][k]
        for k in reference_per_row["completo"]
    }
    worst = max(ratios.values())
    same = all(d["mismos_datos"] for d in detail.values())

    def describe(key: str) -> str:
        d = detail[key]
        return (
            f"{d['filas']} filas: COMPLETO {d['completo_s']:.2f} s, DIFERENCIAL {d['diferencial_s']:.3f} s "
            f"({d['filas_cambiadas']} cambios), restaurar {d['restauracion_s']:.2f} s"
        )

    return Resultado(
        14,
        "Linealidad: costo por fila de COMPLETO, DIFERENCIAL y restauración, base grande contra un cuarto",
        describe("completo") + " → por fila " + ", ".join(f"{k} {v:.2f}×" for k, v in ratios.items()),
        describe("cuarto"),
        worst,
        "costo por fila ≤ 1.2× (y mismos datos)",
        worst <= 1.2 and same,
        {
            "ratios": ratios,
            "ratios_referencia": reference_ratios,
            "por_fila_s": per_row,
            "referencia_por_fila_s": reference_per_row,
            "tamanios": detail,
            "mismos_datos": same,
        },
    )


def lotes_para_carga(ent: Entorno) -> str:
    """200 lotes activos al azar, `id_lote:id_producto` separados por comas (para bench.carga)."""
    with ent.connect() as conn:
        return ",".join(
            f"{a}:{b}"
            for a, b in conn.execute(
                "SELECT l.id_lote, l.id_producto FROM lotes l JOIN productos p USING (id_producto) "
                "WHERE p.activo ORDER BY random() LIMIT 200"
            )
        )


def _cpu_de(pids: list[int]) -> float:
    """Segundos de CPU (usuario + sistema) de esos procesos y sus hijos ya esperados."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            campos = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in campos[11:15]) / tick
    return total


def _sesiones_pg(ent: Entorno) -> int:
    """Sesiones de PostgreSQL abiertas en la base desde que arrancó el servidor (pg_stat_database)."""
    with ent.connect() as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _cpu_maquina() -> float:
    """Segundos de CPU ocupados en toda la máquina (todos los núcleos; /proc/stat)."""
    campos = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    ocupado = sum(campos) - campos[3] - campos[4]  # menos idle e iowait
    return ocupado / os.sysconf("SC_CLK_TCK")


def _cpu_hijos() -> float:
    """CPU de los hijos ya esperados de este proceso: el generador de carga (`run_load`)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def _arbol(pid: int) -> list[int]:
    """`pid` y sus descendientes (los workers de `serve --workers N`)."""
    hijos: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            hijos.setdefault(ppid, []).append(int(entry.name))
    out, pendientes = [], [pid]
    while pendientes:
        actual = pendientes.pop()
        out.append(actual)
        pendientes.extend(hijos.get(actual, []))
    return out


def m13_workers(
    ent: Entorno, reps: int, clients: int, requests: int, seconds: float, workers: int = 2
) -> Resultado:
    """13: peticiones por segundo con `clients` clientes, `serve --workers N` contra `--workers 1`.

    Los dos servicios corren a la vez sobre la misma base (el ocioso no gasta CPU) y las fases de
    carga se alternan (1, N, 1, N...): la deriva de una máquina compartida cae sobre los dos. La carga
    es la de la medida 4 (mitad GET /productos, mitad POST /movimientos). Además de las cifras, la CPU
    que gastó cada parte en cada fase: el servicio, PostgreSQL y el propio generador de carga (en dos
    núcleos compiten los tres)."""
    lots = lotes_para_carga(ent)
    uno, varios = Servicio(ent, 1), Servicio(ent, workers)
    postmaster = ent.server._handle.get_pid() if ent.server._handle is not None else None  # type: ignore[attr-defined]  # pgserver no publica tipos
    fases: dict[str, list[dict[str, Any]]] = {"1": [], str(workers): []}
    carga_maquina = [os.getloadavg()[0]]
    try:
        for _ in range(reps):
            for nombre, servicio in (("1", uno), (str(workers), varios)):
                servicio_pids = _arbol(servicio.proc.pid)
                pg_pids = _arbol(postmaster) if postmaster else []
                sesiones = _sesiones_pg(ent)
                antes = (_cpu_de(servicio_pids), _cpu_de(pg_pids), _cpu_hijos(), _cpu_maquina())
                inicio = time.perf_counter()
                carga = run_load(servicio, lots, clients, requests, seconds)
                pared = time.perf_counter() - inicio
                despues = (
                    _cpu_de(servicio_pids),
                    _cpu_de(_arbol(postmaster) if postmaster else []),
                    _cpu_hijos(),
                    _cpu_maquina(),
                )
                hechas = sum(carga[k]["peticiones"] for k in ("lectura", "escritura"))
                carga["peticiones_por_segundo"] = hechas / carga["segundos"]
                # Conexiones abiertas a la base durante la fase (menos la de esta consulta): cada una
                # es un proceso de PostgreSQL nuevo; con el pool bien medido, casi ninguna.
                carga["sesiones_postgresql_nuevas"] = _sesiones_pg(ent) - sesiones - 1
                carga["cpu_segundos"] = {
                    "servicio": despues[0] - antes[0],
                    "postgresql": despues[1] - antes[1],
                    "generador": despues[2] - antes[2],
                    # Lo demás que corrió en la máquina mientras tanto (otros procesos, otros usuarios).
                    "otros": (despues[3] - antes[3]) - sum(despues[i] - antes[i] for i in range(3)),
                    "pared": pared,
                }
                fases[nombre].append(carga)
    finally:
        uno.stop()
        varios.stop()
    carga_maquina.append(os.getloadavg()[0])

    def rps(nombre: str) -> float:
        return median([f["peticiones_por_segundo"] for f in fases[nombre]])

    def cpu(nombre: str) -> str:
        """Núcleos ocupados por cada parte, su CPU por petición (ms) y el tope de pet/s que esa CPU
        por petición permite en los núcleos de la máquina (si nada más corriera en ella)."""
        partes = ("servicio", "postgresql", "generador")
        textos = []
        total_ms = 0.0
        for p in partes:
            nucleos = median([f["cpu_segundos"][p] / f["segundos"] for f in fases[nombre]])
            ms = median(
                [
                    f["cpu_segundos"][p] * 1000 / (f["peticiones_por_segundo"] * f["segundos"])
                    for f in fases[nombre]
                ]
            )
            total_ms += ms
            textos.append(f"{p} {nucleos:.2f} núcleos, {ms:.1f} ms/pet")
        otros = median([f["cpu_segundos"]["otros"] / f["segundos"] for f in fases[nombre]])
        textos.append(f"otros procesos {otros:.2f} núcleos")
        nuevas = median(
            [
                f["sesiones_postgresql_nuevas"] / (f["peticiones_por_segundo"] * f["segundos"])
                for f in fases[nombre]
            ]
        )
        textos.append(f"{nuevas:.3f} conexiones nuevas a PostgreSQL por petición")
        textos.append(f"tope en {os.cpu_count()} núcleos {(os.cpu_count() or 1) * 1000 / total_ms:.0f} pet/s")
        return "; ".join(textos)

    errors = sum(f[k]["errores"] for lista in fases.values() for f in lista for k in ("lectura", "escritura"))
    ratio = rps(str(workers)) / rps("1")
    return Resultado(
        13,
        f"Peticiones/s con {clients} clientes, serve --workers {workers} contra --workers 1",
        f"--workers {workers}: {rps(str(workers)):.0f} pet/s (CPU: {cpu(str(workers))})",
        f"--workers 1: {rps('1'):.0f} pet/s (CPU: {cpu('1')})",
        ratio,
        f"≥ 1.3× en {os.cpu_count()} núcleos, cero errores",
        ratio >= 1.3 and errors == 0,
        {
            "fases": fases,
            "errores": errors,
            "nucleos": os.cpu_count(),
            "carga_maquina_1min_antes_despues": carga_maquina,
        },
    )
