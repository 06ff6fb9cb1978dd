"""`inventario serve --workers 2` de verdad (subprocesos, loopback): los dos workers atienden, un
backup lanzado en uno es EN_PROCESO y 409 para el otro (y nadie lo da por muerto), SIGTERM espera
a ese backup y detiene el PostgreSQL embebido sin dejar procesos, y cada hora programada de un job
se ejecuta una sola vez aunque compitan dos planificadores."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from inventario.config import Settings
from inventario.postgres import DatabaseServer
from tests.backup_support import API, bloquear_pg_dump, fill
from tests.conftest import ADMIN_PASSWORD
from tests.servicio_support import inventario_exe, servicio

pytestmark = pytest.mark.lento

PID_EN_LINEA = re.compile(r"\[pid (\d+)\] ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _muerto(pid: int) -> bool:
    return not _alive(pid)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _esperar(condicion: Callable[[], object], timeout: float, que: str) -> None:
    deadline = time.monotonic() + timeout
    while not condicion():
        assert time.monotonic() < deadline, f"no ocurrió a tiempo: {que}"
        time.sleep(0.1)


def _login(url: str) -> dict[str, str]:
    r = httpx.post(url + "/api/v1/auth/login", json={"nombre_usuario": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _lineas(logs: Path, nombre: str, texto: str) -> list[tuple[int, str]]:
    """(pid, línea) de cada línea del log que contiene `texto`."""
    out = []
    for line in (logs / nombre).read_text().splitlines():
        match = PID_EN_LINEA.search(line)
        if match and texto in line:
            out.append((int(match.group(1)), line))
    return out


def test_dos_workers_comparten_la_base_embebida_y_los_backups(tmp_path: Path, settings: Settings) -> None:
    logs = tmp_path / "logs-w"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PG_BIN_DIR")},
        "DATA_PATH": str(tmp_path / "data-w"),
        "BACKUP_PATH": str(tmp_path / "backups-w"),
        "LOGS_PATH": str(logs),
        "SECRET_KEY": str(settings.SECRET_KEY),
        "INVENTARIO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # Que ningún backup programado (ni el recuperado al arrancar) tome el cerrojo de backups.
        "BACKUP_ENABLED": "false",
        "BACKUP_INCREMENTAL_MINUTOS": "0",
        "WORKERS": "2",
        # Copia fuera del sitio a una carpeta (un disco USB): el worker que hizo el backup arranca su
        # rclone residente, en una carpeta de TMPDIR (propia de la prueba).
        "BACKUP_REMOTO": str(tmp_path / "usb" / "inventario"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    pgdata = tmp_path / "data-w" / "pgdata"
    with servicio(env) as srv:
        parent = srv.proc.pid
        assert "Procesos:      2 workers atienden HTTP" in "\n".join(srv.aviso)
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        workers = [p for p in _children(parent) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
        # El PostgreSQL embebido es uno solo y su único dueño es el proceso principal.
        assert (pgdata / ".handle_pids.json").read_text().strip() == f"[{parent}]"

        # Peticiones en paralelo, cada una en su conexión: las atienden los dos workers.
        def salud(_: int) -> int:
            return httpx.get(srv.url + "/health", headers={"Connection": "close"}, timeout=30).status_code

        with ThreadPoolExecutor(16) as pool:
            deadline = time.monotonic() + 60
            while True:
                assert set(pool.map(salud, range(64))) == {200}
                atendieron = {pid for pid, _ in _lineas(logs, "acceso.log", '"GET /health')}
                if atendieron == set(workers) or time.monotonic() > deadline:
                    break
        assert atendieron == set(workers)  # ni más (el principal no atiende HTTP) ni menos
        # /health de un worker describe el planificador del principal, en marcha.
        planificador = httpx.get(srv.url + "/health").json()["scheduler"]
        assert planificador["activo"] is True and planificador["instancia"].endswith(f":{parent}")

        headers = _login(srv.url)
        embebida = DatabaseServer(
            make_url(f"postgresql+psycopg://postgres:@/inventario?host={pgdata}"), embedded=True
        )
        fill(embebida)
        bloqueo = bloquear_pg_dump(embebida)  # el backup queda EN_PROCESO hasta soltarlo
        try:
            r = httpx.post(f"{srv.url}{API}/ejecutar-completo", headers={**headers, "Connection": "close"})
            assert r.status_code == 202, r.text
            id_backup = r.json()["id_backup"]
            (dueno,) = {pid for pid, _ in _lineas(logs, "acceso.log", 'ejecutar-completo HTTP/1.1" 202')}
            # Desde los dos workers: lo ven EN_PROCESO, otro backup es 409 y /health (que cierra los
            # EN_PROCESO sin cerrojo, de procesos muertos) no lo da por muerto.
            deadline = time.monotonic() + 60
            while True:
                for _ in range(8):
                    c = {**headers, "Connection": "close"}
                    assert (
                        httpx.get(f"{srv.url}{API}/{id_backup}", headers=c).json()["estado"] == "EN_PROCESO"
                    )
                    r2 = httpx.post(f"{srv.url}{API}/ejecutar-completo", headers=c)
                    assert r2.status_code == 409 and r2.json()["detalle"].startswith("Backup en curso"), (
                        r2.text
                    )
                    assert httpx.get(srv.url + "/health", headers=c).status_code == 200
                rechazos = _lineas(logs, "acceso.log", f'POST {API}/ejecutar-completo HTTP/1.1" 409')
                otros = {pid for pid, _ in rechazos} - {dueno}
                if otros or time.monotonic() > deadline:
                    break
            assert otros and otros <= set(workers), rechazos
            assert httpx.get(f"{srv.url}{API}/{id_backup}", headers=headers).json()["estado"] == "EN_PROCESO"

            # SIGTERM con el backup en curso: el principal para a los workers y el dueño del backup
            # lo termina antes de salir; la base sigue en marcha mientras tanto.
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(3)
            assert srv.proc.poll() is None and _alive(dueno) and _alive(postmaster)
        finally:
            bloqueo.rollback()
            bloqueo.close()
        srv.proc.wait(120)
    assert srv.proc.returncode == 0, srv.errores
    assert srv.salida.strip().endswith("Inventario detenido."), srv.salida
    for pid in [*workers, postmaster]:
        _esperar(partial(_muerto, pid), 30, f"el proceso {pid} terminó")
    assert not (pgdata / "postmaster.pid").exists()
    # El backup lanzado en un worker terminó entero antes de que ese worker saliera.
    archivos = sorted((tmp_path / "backups-w").glob("backup_*_FULL.sql.gz"))
    assert len(archivos) == 1, archivos
    assert not list((tmp_path / "backups-w").glob("*.tmp*"))
    completado = _lineas(logs, "app.log", f"Backup {id_backup} COMPLETO completado")
    assert completado and {pid for pid, _ in completado} == {dueno}, completado
    # Su copia fuera del sitio también terminó antes de salir, y el rclone residente de ese worker
    # se detuvo con él (ni su carpeta ni su proceso quedan).
    assert any(archivos[0].name in p.name for p in (tmp_path / "usb" / "inventario").rglob("*"))
    rclone = _lineas(logs, "app.log", "rclone")
    assert list((tmp_path / "tmp").glob("inventario-rclone-*")) == [], rclone
    tmp = str(tmp_path / "tmp").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert tmp not in cmdline, cmdline


def test_cada_hora_programada_una_sola_vez_con_workers_y_otro_planificador(
    cli_env: dict[str, str], fresh_db: DatabaseServer, settings: Settings
) -> None:
    """`serve --workers 2` (su planificador en el principal) y un `inventario scheduler` aparte,
    sobre la misma base, con `backup_incremental` cada minuto: cada hora programada, una corrida y
    un backup; ningún worker ejecuta jobs."""
    # Gracia de 1 min: los jobs diarios no se recuperan al arrancar (su backup_diario también haría
    # un backup); los de cada N minutos no tienen gracia.
    env = {**cli_env, "BACKUP_INCREMENTAL_MINUTOS": "1", "SCHEDULER_GRACIA_MIN": "1"}
    fill(fresh_db)

    def corridas() -> list[tuple]:
        with fresh_db.connect() as conn:
            return conn.execute(
                "SELECT job_id, programada_para, estado, instancia FROM ejecuciones_job "
                "WHERE job_id = 'backup_incremental' ORDER BY programada_para"
            ).fetchall()

    otro = subprocess.Popen(
        [inventario_exe(), "scheduler"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        with servicio(env, "--workers", "2") as srv:
            parent = srv.proc.pid
            workers = set(_children(parent))

            # La corrida de la hora actual (recuperada al arrancar) y la del minuto siguiente.
            _esperar(lambda: any(c[2] != "EN_CURSO" for c in corridas()), 90, "la primera corrida")
            primera = corridas()[0][1]
            with fresh_db.connect() as conn:  # un cambio: la siguiente corrida escribe un incremental
                conn.execute("UPDATE productos SET nombre = nombre || '!' WHERE id_producto = 1")
            _esperar(
                lambda: [
                    c for c in corridas() if c[1] >= primera + timedelta(minutes=1) and c[2] != "EN_CURSO"
                ],
                150,
                "la corrida del minuto siguiente",
            )
    finally:
        otro.send_signal(signal.SIGTERM)
        otro.communicate(timeout=60)
    assert srv.proc.returncode == 0 and otro.returncode == 0
    filas = corridas()  # con los dos planificadores ya detenidos: lo que se ve es todo lo que hicieron
    assert all(c[2] == "OK" for c in filas), filas
    horas = [c[1] for c in filas]
    assert len(horas) == len(set(horas)) >= 2  # una fila por hora programada (y la restricción única)
    instancias = {int(c[3].rsplit(":", 1)[1]) for c in filas}
    assert instancias <= {parent, otro.pid} and not instancias & workers, (instancias, workers)
    with fresh_db.connect() as conn:
        backups = conn.execute(
            "SELECT b.tipo, count(e.id_ejecucion), min(e.programada_para) FROM historial_backup b "
            "LEFT JOIN ejecuciones_job e ON e.job_id = 'backup_incremental' "
            "AND b.fecha_creacion BETWEEN e.inicio AND e.fin GROUP BY b.id_backup ORDER BY b.id_backup"
        ).fetchall()
    tipos = [b[0] for b in backups]
    # Lo que hizo el job, una vez por hora programada: la primera corrida, sin un completo previo,
    # hizo el COMPLETO (dos planificadores a la vez habrían hecho dos); las siguientes, incrementales
    # (o nada si no hubo cambios). Cada backup cae dentro de una sola corrida y ninguna corrida tiene
    # dos backups.
    assert tipos[0] == "COMPLETO" and tipos.count("COMPLETO") == 1, backups
    assert "INCREMENTAL" in tipos, backups
    assert all(b[1] == 1 for b in backups), (backups, filas)
    assert len({b[2] for b in backups}) == len(backups), (backups, filas)
