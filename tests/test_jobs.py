"""Planificador contra PostgreSQL real: una sola corrida por hora programada aunque haya varias
instancias, recuperación tras una caída, registro de cada corrida y notificación de los fallos."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import text

from inventario.config import Settings
from inventario.modules.backup.service import BACKUP_LOCK_KEY
from inventario.modules.planificador.resultado import ContextoJob, JobFallido, ResultadoJob
from inventario.modules.planificador.scheduler import Scheduler
from inventario.modules.planificador.service import JOBS, JobDef, JobEnCurso, JobsService
from inventario.postgres import DatabaseServer
from inventario.runtime import Runtime, open_runtime
from tests.backup_support import connect

MX = ZoneInfo("America/Mexico_City")
JOB = {j.job_id: j for j in JOBS}
# Miércoles 2025-12-03 y lunes 2025-12-01, a la hora de cada job.
MIERCOLES = datetime(2025, 12, 3, tzinfo=MX)
LUNES = datetime(2025, 12, 1, tzinfo=MX)


def at(day: datetime, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute, second=second)


class Contador:
    """Un job de prueba: cuenta sus corridas y puede tardar, para que dos instancias se solapen."""

    def __init__(self, pausa: float = 0.0, falla: BaseException | None = None) -> None:
        self.pausa, self.falla = pausa, falla
        self.llamadas: list[ContextoJob] = []
        self._lock = threading.Lock()

    def __call__(self, ctx: ContextoJob) -> ResultadoJob:
        with self._lock:
            self.llamadas.append(ctx)
        time.sleep(self.pausa)
        if self.falla is not None:
            raise self.falla
        return ResultadoJob("OK", f"hecho para {ctx.programada_para.isoformat()}")


def with_fn(job_id: str, fn: Contador) -> JobDef:
    return replace(JOB[job_id], funcion=fn)


def ledger(runtime: Runtime) -> Sequence[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM ejecuciones_job ORDER BY id_ejecucion")).all()


def notifications(runtime: Runtime) -> Sequence[Any]:
    with runtime.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT tipo, titulo, mensaje, semaforo, referencia_tipo, referencia_id FROM notificaciones ORDER BY 1, 2"
            )
        ).all()


@pytest.fixture
def second_runtime(settings: Settings, fresh_db: DatabaseServer) -> Iterator[Runtime]:
    """Otra instancia sobre la misma base: su propio motor y sus propias conexiones."""
    rt = open_runtime(settings, fresh_db, migrate=False)
    yield rt
    rt.close()


def test_corrida_programada_una_vez_y_registrada(runtime: Runtime) -> None:
    fn = Contador()
    service = JobsService(runtime, jobs=[with_fn("alertas_diarias", fn)], instancia="host-a:1")
    first = service.run_due("alertas_diarias", at(MIERCOLES, 6, 0, 1))
    assert first.resultado == "EJECUTADA" and first.estado == "OK"
    assert first.programada_para == at(MIERCOLES, 6)
    # El mismo día, más tarde (o disparos repetidos): ya se hizo.
    for later in (at(MIERCOLES, 6, 0, 2), at(MIERCOLES, 12), at(MIERCOLES, 18)):
        assert service.run_due("alertas_diarias", later).resultado == "YA_EJECUTADA"
    # Pasada la gracia (12 h) ya no se mira esa hora; antes de las 06:00 del día siguiente tampoco.
    assert service.run_due("alertas_diarias", at(MIERCOLES, 23, 59)).resultado == "FUERA_DE_GRACIA"
    assert (
        service.run_due("alertas_diarias", at(MIERCOLES + timedelta(days=1), 5, 59)).resultado
        == "FUERA_DE_GRACIA"
    )
    assert service.run_due("alertas_diarias", at(MIERCOLES + timedelta(days=1), 6)).resultado == "EJECUTADA"
    assert len(fn.llamadas) == 2
    rows = ledger(runtime)
    assert [(r.job_id, r.estado, r.manual, r.ejecutado_por, r.instancia) for r in rows] == [
        ("alertas_diarias", "OK", False, "SCHEDULER", "host-a:1")
    ] * 2
    assert rows[0].programada_para == at(MIERCOLES, 6)
    assert rows[0].mensaje == f"hecho para {at(MIERCOLES, 6).isoformat()}"
    assert rows[0].inicio <= rows[0].fin
    assert fn.llamadas[0].manual is False and fn.llamadas[0].runtime is runtime


def test_recuperacion_al_arrancar_dentro_de_la_gracia_una_sola_vez(runtime: Runtime) -> None:
    fns = {j: Contador() for j in JOB}
    service = JobsService(runtime, jobs=[with_fn(j, f) for j, f in fns.items()])
    assert runtime.settings.SCHEDULER_GRACIA_MIN == 720
    # Detenido desde el domingo; vuelve el miércoles a las 05:30: backup (03:00) y logs (04:00)
    # se recuperan una vez (las de hoy, no las de lunes y martes); alertas (06:00) aún no toca:
    # su última programada es la de ayer 06:00, hace 23,5 h, fuera de la gracia.
    now = at(MIERCOLES, 5, 30)
    corridas = {c.job_id: c for c in service.catch_up(now)}
    assert corridas["backup_diario"].resultado == "EJECUTADA"
    assert corridas["backup_diario"].programada_para == at(MIERCOLES, 3)
    assert corridas["logs_maintenance"].resultado == "EJECUTADA"
    assert corridas["alertas_diarias"].resultado == "FUERA_DE_GRACIA"
    # El incremental (cada 15 min) recupera solo su última hora: 05:30.
    assert corridas["backup_incremental"].programada_para == at(MIERCOLES, 5, 30)
    assert [len(f.llamadas) for f in fns.values()] == [1, 1, 1, 0]
    assert {r.ejecutado_por for r in ledger(runtime)} == {"RECUPERACION"}
    # Reiniciar otra vez no repite nada.
    assert {c.resultado for c in service.catch_up(now + timedelta(minutes=5))} == {
        "YA_EJECUTADA",
        "FUERA_DE_GRACIA",
    }
    # A las 06:00 APScheduler dispara alertas normalmente.
    assert service.run_due("alertas_diarias", at(MIERCOLES, 6, 0, 1)).resultado == "EJECUTADA"
    # Fuera de la gracia (vuelve a las 15:01, 12 h y 1 min después de las 03:00): se espera a mañana.
    other = JobsService(runtime, jobs=[with_fn("backup_diario", Contador())])
    jueves = MIERCOLES + timedelta(days=1)
    assert other.run_due("backup_diario", at(jueves, 15, 1)).resultado == "FUERA_DE_GRACIA"
    assert other.run_due("backup_diario", at(jueves, 15, 0)).resultado == "EJECUTADA"


def test_dos_planificadores_a_la_vez_una_sola_corrida(runtime: Runtime, second_runtime: Runtime) -> None:
    """Dos instancias (motores y conexiones distintos) disparan la misma hora a la vez."""
    fn = Contador(pausa=0.3)
    job = [with_fn("alertas_diarias", fn)]
    a = Scheduler(runtime, jobs=job, instancia="host-a:1")
    b = Scheduler(second_runtime, jobs=job, instancia="host-b:2")
    for day in range(4):
        moment = at(MIERCOLES + timedelta(days=day), 6, 0, 1)

        def fixed(moment: datetime = moment) -> datetime:
            return moment

        a.clock = b.clock = fixed
        barrier = threading.Barrier(2)
        results: dict[str, object] = {}

        def fire(
            p: Scheduler, barrier: threading.Barrier = barrier, results: dict[str, object] = results
        ) -> None:
            barrier.wait()
            results[p.service.instancia] = p.service.run_due("alertas_diarias", p.clock())

        threads = [threading.Thread(target=fire, args=(p,)) for p in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        outcomes = sorted(r.resultado for r in results.values())  # type: ignore[attr-defined]  # cada valor es un JobRun
        assert outcomes.count("EJECUTADA") == 1, outcomes
        assert set(outcomes) <= {"EJECUTADA", "EN_OTRA_INSTANCIA", "YA_EJECUTADA"}
    assert len(fn.llamadas) == 4
    rows = ledger(runtime)
    assert len(rows) == 4 and {r.estado for r in rows} == {"OK"}
    # Y la segunda que dispara un momento después (por APScheduler: `_fire`) tampoco repite.
    b._fire("alertas_diarias")
    a._fire("alertas_diarias")
    assert len(fn.llamadas) == 4 and len(ledger(runtime)) == 4


def test_dos_instancias_con_el_job_real_de_alertas_no_duplican(
    runtime: Runtime, second_runtime: Runtime
) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO productos (codigo, nombre, stock_minimo) VALUES ('P1', 'Paracetamol', 5)")
        )
    services = [JobsService(runtime, instancia="a:1"), JobsService(second_runtime, instancia="b:2")]
    barrier = threading.Barrier(2)
    now = datetime.now(MX)
    out = []

    def fire(s: JobsService) -> None:
        barrier.wait()
        out.append(s.run_due("alertas_diarias", now))

    threads = [threading.Thread(target=fire, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(c.resultado for c in out).count("EJECUTADA") <= 1
    executed = [c for c in out if c.resultado == "EJECUTADA"]
    if executed:  # la última hora programada puede estar fuera de la gracia según la hora actual
        assert executed[0].estado == "OK", executed[0].mensaje
    # A mano, dos veces: el job real no duplica las alertas.
    services[0].run_now("alertas_diarias")
    services[1].run_now("alertas_diarias")
    assert [n.titulo for n in notifications(runtime)] == ["Sin stock: Paracetamol"]


def test_fallos_quedan_registrados_y_notificados(runtime: Runtime) -> None:
    jobs = [
        with_fn("alertas_diarias", Contador(falla=RuntimeError("disco lleno en /var"))),
        with_fn("backup_diario", Contador(falla=JobFallido("pg_dump terminó con código 1"))),
        with_fn("logs_maintenance", Contador(falla=JobFallido("ya notificado", notificado=True))),
    ]
    service = JobsService(runtime, jobs=jobs, instancia="host-a:1")
    for job_id, hour in (("alertas_diarias", 6), ("backup_diario", 3), ("logs_maintenance", 4)):
        corrida = service.run_due(job_id, at(MIERCOLES, hour, 0, 1))
        assert corrida.resultado == "EJECUTADA" and corrida.estado == "ERROR"
    rows = {r.job_id: r for r in ledger(runtime)}
    assert rows["alertas_diarias"].mensaje == "RuntimeError: disco lleno en /var"
    assert rows["backup_diario"].mensaje == "pg_dump terminó con código 1"
    assert all(r.estado == "ERROR" and r.fin is not None for r in rows.values())
    notes = notifications(runtime)
    assert len(notes) == 2  # el tercero ya venía notificado por su servicio
    backup = next(n for n in notes if n.tipo == "BACKUP")
    assert backup.semaforo == "ROJO" and backup.titulo == "❌ Error en el backup diario (backup_diario)"
    assert "pg_dump terminó con código 1" in backup.mensaje and "host-a:1" in backup.mensaje
    assert (backup.referencia_tipo, backup.referencia_id) == (
        "EJECUCION_JOB",
        rows["backup_diario"].id_ejecucion,
    )
    other = next(n for n in notes if n.tipo == "MANTENIMIENTO")
    assert other.semaforo == "ROJO" and "alertas_diarias" in other.titulo
    # Un fallo no se reintenta solo en la misma hora programada; la próxima sí corre.
    assert service.run_due("alertas_diarias", at(MIERCOLES, 7)).resultado == "YA_EJECUTADA"
    # Los secretos de un mensaje de error no llegan al registro.
    leaky = JobsService(
        runtime,
        jobs=[with_fn("alertas_diarias", Contador(falla=RuntimeError("postgresql://u:clave-secreta@h/db")))],
    )
    leaky.run_due("alertas_diarias", at(MIERCOLES + timedelta(days=1), 6))
    assert "clave-secreta" not in ledger(runtime)[-1].mensaje


def hold_lock(server: DatabaseServer, key: tuple[int, ...]) -> psycopg.Connection:
    conn = connect(server)
    placeholders = ", ".join(["%s"] * len(key))
    assert conn.execute(f"SELECT pg_try_advisory_lock({placeholders})", key).fetchone()[0]
    return conn


def test_corrida_interrumpida_se_reconoce_y_se_cierra(runtime: Runtime, fresh_db: DatabaseServer) -> None:
    fn = Contador()
    service = JobsService(runtime, jobs=[with_fn("backup_diario", fn)], instancia="host-a:1")
    job = service.job("backup_diario")
    # Una instancia murió a mitad del backup del martes: su fila quedó EN_CURSO.
    martes = at(MIERCOLES - timedelta(days=1), 3)
    with runtime.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ejecuciones_job (job_id, programada_para, estado, instancia, ejecutado_por) "
                "VALUES ('backup_diario', :s, 'EN_CURSO', 'host-muerto:99', 'SCHEDULER')"
            ),
            {"s": martes},
        )
    # Mientras alguien tiene el cerrojo del job, está en curso de verdad.
    holder = hold_lock(fresh_db, service.lock_key(job))
    try:
        [item] = service.status(at(MIERCOLES, 1))
        assert item["en_curso"] and not item["interrumpida"] and item["estado"] == "OK"
        with pytest.raises(JobEnCurso):
            service.run_now("backup_diario")
        assert service.run_due("backup_diario", at(MIERCOLES, 3)).resultado == "EN_OTRA_INSTANCIA"
        assert service.recover() == []
    finally:
        holder.close()
    # Sin cerrojo: el proceso murió. El estado lo muestra interrumpida y degradado...
    [item] = service.status(at(MIERCOLES, 1))
    assert item["interrumpida"] and not item["en_curso"] and item["estado"] == "DEGRADADO"
    assert "interrumpida (instancia host-muerto:99)" in item["problema"]
    # ...y quien toma el cerrojo la cierra como ERROR y avisa en ROJO. Luego corre la de hoy.
    corrida = service.run_due("backup_diario", at(MIERCOLES, 3, 0, 1))
    assert corrida.resultado == "EJECUTADA" and corrida.estado == "OK"
    dead, today = ledger(runtime)
    assert dead.estado == "ERROR" and dead.fin is not None
    assert dead.mensaje.startswith("Interrumpida: la instancia host-muerto:99 dejó de ejecutarla")
    [note] = notifications(runtime)
    assert note.semaforo == "ROJO" and note.referencia_id == dead.id_ejecucion
    assert today.estado == "OK" and len(fn.llamadas) == 1


def test_backup_diario_real_lunes_completo_y_registro(runtime: Runtime) -> None:
    service = JobsService(runtime)
    corrida = service.run_due("backup_diario", at(LUNES, 3, 0, 1))
    assert corrida.estado == "OK", corrida.mensaje
    assert (
        corrida.mensaje.startswith("Backup COMPLETO ")
        and "Retención (90 días): 0 backups eliminados" in corrida.mensaje
    )
    with runtime.engine.connect() as conn:
        backup = conn.execute(text("SELECT tipo, estado, ejecutado_por FROM historial_backup")).one()
    assert tuple(backup) == ("COMPLETO", "COMPLETADO", "SCHEDULER")
    # El martes toca DIFERENCIAL (el engine lo hace con el completo del lunes como base).
    # (recuperada al arrancar: en historial_backup sigue siendo SCHEDULER, el valor del plan)
    corrida = service.run_due("backup_diario", at(LUNES + timedelta(days=1), 3, 0, 1), origen="RECUPERACION")
    assert corrida.estado == "OK" and corrida.mensaje.startswith("Backup DIFERENCIAL "), corrida.mensaje
    with runtime.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT array_agg(ejecutado_por) FROM historial_backup")).scalar()
            == ["SCHEDULER"] * 2
        )
    assert [n.semaforo for n in notifications(runtime)] == ["VERDE", "VERDE"]


def test_backup_deshabilitado_omitido_y_backup_en_curso_es_fallo(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    disabled = runtime.settings.model_copy(update={"BACKUP_ENABLED": False})
    rt_off = Runtime(disabled, runtime.server, runtime.engine, runtime.session_factory, owns_server=False)
    corrida = JobsService(rt_off).run_due("backup_diario", at(MIERCOLES, 3, 0, 1))
    assert corrida.estado == "OMITIDO" and "BACKUP_ENABLED=false" in corrida.mensaje
    assert list(runtime.settings.backup_dir.glob("backup_*")) == []
    assert notifications(runtime) == []
    [item] = [i for i in JobsService(rt_off).status(at(MIERCOLES, 4)) if i["job_id"] == "backup_diario"]
    assert item["estado"] == "OK"  # omitido por configuración no es un problema
    # Pedido a mano es una orden explícita: se hace aunque los programados estén apagados.
    row = JobsService(rt_off).run_now("backup_diario", "admin")
    assert row.estado == "OK" and row.manual, row.mensaje
    with runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT ejecutado_por FROM historial_backup")).scalar_one() == "admin"
    with runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM notificaciones"))

    # Otro backup en curso (cerrojo del motor tomado) a la hora del job: fallo registrado y ROJO.
    holder = hold_lock(fresh_db, (BACKUP_LOCK_KEY,))
    try:
        corrida = JobsService(runtime).run_due("backup_diario", at(MIERCOLES + timedelta(days=1), 3, 0, 1))
    finally:
        holder.close()
    assert corrida.estado == "ERROR"
    assert corrida.mensaje.startswith("No se hizo el backup DIFERENCIAL: Backup en curso")
    [note] = notifications(runtime)
    assert note.tipo == "BACKUP" and note.semaforo == "ROJO" and "Backup en curso" in note.mensaje


def test_estado_degradado_si_no_corrio_cuando_debia(runtime: Runtime) -> None:
    service = JobsService(runtime, jobs=[with_fn("alertas_diarias", Contador())])
    # Instalación nueva: nada que reprochar aunque la hora ya pasó.
    [item] = service.status(at(MIERCOLES, 20))
    assert item["estado"] == "OK" and item["ultima_ejecucion"] is None
    assert item["proxima_ejecucion"] == at(MIERCOLES + timedelta(days=1), 6)
    # Con un planificador en marcha desde antes de las 06:00, a las 18:01 (gracia vencida) sin corrida: degradado.
    [item] = service.status(at(MIERCOLES, 18, 1), desde=at(MIERCOLES, 1))
    assert item["estado"] == "DEGRADADO" and "no se ejecutó a las 2025-12-03 06:00" in item["problema"]
    [item] = service.status(at(MIERCOLES, 17, 59), desde=at(MIERCOLES, 1))
    assert item["estado"] == "OK"  # aún dentro de la gracia
    # Con historial (corrió el martes) también, aunque este proceso acabe de arrancar.
    service.run_due("alertas_diarias", at(MIERCOLES - timedelta(days=1), 6))
    [item] = service.status(at(MIERCOLES, 19))
    assert item["estado"] == "DEGRADADO"
    # Una corrida manual después de la hora programada lo cubre.
    service.run_now("alertas_diarias", "admin")
    [item] = service.status(datetime.now(MX) + timedelta(minutes=1))
    assert item["ultima_ejecucion"].manual and item["ultima_ejecucion"].ejecutado_por == "admin"
    health = service.health(at(MIERCOLES, 19), activo=True, esperado=True, desde=at(MIERCOLES, 1))
    assert health["estado"] == "OK", health
    # Un planificador que debía estar en marcha y no lo está: degradado.
    health = service.health(at(MIERCOLES, 19), activo=False, esperado=True)
    assert health["estado"] == "DEGRADADO" and "no está en marcha" in health["mensaje"]


def test_degradado_si_el_despliegue_ya_corria_otros_jobs(runtime: Runtime) -> None:
    """Un equipo que nunca está encendido a las 03:00 (ni dentro de la gracia) no hace backups:
    en cuanto el despliegue corrió cualquier job, el backup que falta se ve."""
    service = JobsService(runtime, jobs=[with_fn(j, Contador()) for j in JOB])
    assert service.run_due("alertas_diarias", at(MIERCOLES, 16)).resultado == "EJECUTADA"  # gracia: 10 h
    jueves = MIERCOLES + timedelta(days=1)
    items = {i["job_id"]: i for i in service.status(at(jueves, 16))}
    assert items["backup_diario"]["estado"] == "DEGRADADO"
    assert "no se ejecutó a las 2025-12-04 03:00" in items["backup_diario"]["problema"]
    # logs_maintenance es de cada máquina: solo cuentan sus propias corridas.
    assert items["logs_maintenance"]["estado"] == "OK"
    assert items["alertas_diarias"]["estado"] == "OK"  # la del jueves 06:00 aún está en la gracia


def test_cerrojo_ocupado_se_reintenta_y_no_se_pierde_la_hora(
    runtime: Runtime, fresh_db: DatabaseServer
) -> None:
    """Una corrida manual que empezó justo antes de la hora no se come la corrida programada."""
    fn = Contador()
    clock_now = at(MIERCOLES, 6, 0, 1)
    p = Scheduler(runtime, jobs=[with_fn("alertas_diarias", fn)], clock=lambda: clock_now)
    p.start(catch_up=False)
    try:
        holder = hold_lock(fresh_db, p.service.lock_key(p.service.job("alertas_diarias")))
        try:
            p._fire("alertas_diarias")
        finally:
            holder.close()
        retry = p._scheduler.get_job("alertas_diarias:reintento")
        assert retry is not None and fn.llamadas == []
        assert 50 < (retry.next_run_time - datetime.now(MX)).total_seconds() <= 60
        retry.func(*retry.args)  # lo que hará APScheduler en un minuto
        assert len(fn.llamadas) == 1 and ledger(runtime)[0].programada_para == at(MIERCOLES, 6)
    finally:
        p.shutdown()


def test_planificador_apscheduler_arranca_recupera_y_se_detiene(runtime: Runtime, tmp_path: Path) -> None:
    fns = {j: Contador() for j in JOB}
    clock_now = at(MIERCOLES, 4, 30)
    p = Scheduler(runtime, jobs=[with_fn(j, f) for j, f in fns.items()], clock=lambda: clock_now)
    p.start()
    try:
        assert p.wait_startup(30)
        assert p.running
        aps = {j.id: j for j in p._scheduler.get_jobs()}
        assert set(aps) == set(JOB)
        for job_id, hour in (("backup_diario", 3), ("logs_maintenance", 4), ("alertas_diarias", 6)):
            trigger = aps[job_id].trigger
            assert (
                str(trigger) == f"cron[hour='{hour}', minute='0']"
                and str(trigger.timezone) == "America/Mexico_City"
            )
            assert aps[job_id].coalesce is True and aps[job_id].misfire_grace_time == 720 * 60
        # Recuperó backup (03:00), el incremental (04:30) y logs (04:00) de "hoy"; alertas no tocaba.
        assert [len(f.llamadas) for f in fns.values()] == [1, 1, 1, 0]
        trigger = aps["backup_incremental"].trigger
        assert trigger.get_next_fire_time(clock_now, clock_now) == at(MIERCOLES, 4, 45)
        info = p.info()
        assert info["activo"] is True and info["estado"] == "OK"
        assert [j["job_id"] for j in info["jobs"]] == [
            "backup_diario",
            "backup_incremental",
            "logs_maintenance",
            "alertas_diarias",
        ]
        assert info["jobs"][3]["proxima_ejecucion"] == at(MIERCOLES, 6).isoformat()
        assert info["jobs"][0]["ultima_ejecucion"]["estado"] == "OK"
    finally:
        p.shutdown()
    assert not p.running
    assert p.info()["estado"] == "DEGRADADO"
