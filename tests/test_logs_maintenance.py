"""Mantenimiento de logs sobre árboles generados de archivos con fecha: ventanas por familia,
retención, archivos que no se tocan, caídas a mitad (también reales, con SIGKILL) y 10 000 archivos."""

from __future__ import annotations

import gzip
import logging
import os
import socket
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inventario.config import Settings
from inventario.errors import cantidad
from inventario.modules.logs.service import LOCK_NAME, MantenimientoEnCurso, _exclusive, maintain
from inventario.runtime import Runtime

MX = ZoneInfo("America/Mexico_City")
NOW = datetime(2025, 12, 3, 4, 0, tzinfo=MX)
TODAY = NOW.date()
VENTANA = {"app.log": 7, "error.log": 10, "health.log": 14, "sesiones.log": 30}


def ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def write(directory: Path, name: str, content: bytes | None = None, *, mtime_day: date | None = None) -> Path:
    """Un archivo real; su fecha de modificación es el mediodía del día de su nombre (o `mtime_day`)."""
    path = directory / name
    path.write_bytes(content if content is not None else (f"línea de {name}\n" * 50).encode())
    day = mtime_day
    if day is None:
        try:
            day = date.fromisoformat(name.split(".")[2])
        except (IndexError, ValueError):
            day = TODAY
    ts = datetime(day.year, day.month, day.day, 12, tzinfo=MX).timestamp()
    os.utime(path, (ts, ts))
    return path


def listing(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name != LOCK_NAME}


@pytest.fixture
def logs(settings: Settings) -> Path:
    settings.logs_dir.mkdir(parents=True)
    return settings.logs_dir


def test_ventanas_por_familia_retencion_y_lo_que_no_se_toca(
    settings: Settings, logs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    originals: dict[str, bytes] = {}
    expected_compressed, expected_deleted, expected_plain = set(), set(), set()
    for family, window in VENTANA.items():
        # El activo, aunque sea viejo, nunca se toca.
        write(logs, family, b"activo\n", mtime_day=TODAY - timedelta(days=400))
        for name in (f"{family}.{ago(0)}", f"{family}.{ago(1)}", f"{family}.{ago(window)}"):
            write(logs, name)
            expected_plain.add(name)
        for name in (f"{family}.{ago(window + 1)}", f"{family}.{ago(window + 1)}.1", f"{family}.{ago(60)}.2"):
            originals[name] = write(logs, name).read_bytes()
            expected_compressed.add(name)
        for name in (f"{family}.{ago(90)}.gz", f"{family}.{ago(89)}.1.gz"):
            write(logs, name, gzip.compress(b"viejo\n"))
        for name in (f"{family}.{ago(91)}.gz", f"{family}.{ago(400)}.3.gz"):
            write(logs, name, gzip.compress(b"muy viejo\n"))
            expected_deleted.add(name)
    # Sin fecha en el nombre (rotación numérica): la edad sale de la fecha de modificación.
    originals["app.log.3"] = write(logs, "app.log.3", mtime_day=TODAY - timedelta(days=20)).read_bytes()
    expected_compressed.add("app.log.3")
    write(logs, "error.log.4", mtime_day=TODAY - timedelta(days=5))
    # Un rotado que pasó la retención sin comprimirse se borra (comprimirlo para borrarlo no sirve).
    write(logs, f"sesiones.log.{ago(92)}")
    expected_deleted.add(f"sesiones.log.{ago(92)}")
    write(logs, "health.log.2.gz", gzip.compress(b"x"), mtime_day=TODAY - timedelta(days=100))
    expected_deleted.add("health.log.2.gz")
    # Ajenos: otros nombres, fechas imposibles, carpetas.
    for name in (
        "notas.txt",
        "app.log.bak",
        "otro.log.2020-01-01",
        "app.log.2020-13-45",
        "app.logx.2020-01-01",
    ):
        write(logs, name, mtime_day=date(2020, 1, 1))
    (logs / f"app.log.{ago(100)}.d").mkdir()
    before = listing(logs)

    with caplog.at_level(logging.INFO, logger="inventario.modules.logs.service"):
        result = maintain(settings, now=NOW)

    assert sorted(result.comprimidos) == sorted(expected_compressed)
    assert sorted(result.eliminados) == sorted(expected_deleted)
    assert result.errores == [] and result.en_uso == [] and result.recuperados == []
    after = listing(logs)
    assert after == (before - expected_compressed - expected_deleted) | {
        n + ".gz" for n in expected_compressed
    }
    for name, content in originals.items():
        packed = logs / f"{name}.gz"
        assert gzip.decompress(packed.read_bytes()) == content
        # Conserva la fecha de modificación del original (la usa la retención de los numéricos).
        assert packed.stat().st_mtime == pytest.approx(datetime(*_day_of(name), 12, tzinfo=MX).timestamp())
    for family in VENTANA:
        assert (logs / family).read_bytes() == b"activo\n"
    assert result.bytes_originales == sum(len(c) for c in originals.values())
    assert result.bytes_comprimidos == sum((logs / f"{n}.gz").stat().st_size for n in originals)
    assert result.bytes_ahorrados > 0
    assert result.bytes_eliminados == (
        8 * len(gzip.compress(b"muy viejo\n"))
        + len(gzip.compress(b"x"))
        + len(f"línea de sesiones.log.{ago(92)}\n".encode()) * 50
    )
    summary = result.resumen()
    assert (
        cantidad(len(expected_compressed), "archivo comprimido", "archivos comprimidos") in summary
        and cantidad(len(expected_deleted), "comprimido eliminado", "comprimidos eliminados") in summary
    )
    assert any(
        f"Mantenimiento de logs: {len(expected_compressed)} comprimidos" in r.getMessage()
        and f"{len(expected_deleted)} eliminados" in r.getMessage()
        for r in caplog.records
    )

    # Otra pasada no hace nada.
    again = maintain(settings, now=NOW)
    assert (again.comprimidos, again.eliminados, again.errores) == ([], [], [])
    assert listing(logs) == after
    # Al día siguiente, lo que cumplió su ventana hoy pasa a comprimirse.
    tomorrow = maintain(settings, now=NOW + timedelta(days=1))
    assert sorted(tomorrow.comprimidos) == sorted(f"{f}.{ago(w)}" for f, w in VENTANA.items())
    assert sorted(tomorrow.eliminados) == sorted(f"{f}.{ago(90)}.gz" for f in VENTANA)


def _day_of(name: str) -> tuple[int, int, int]:
    if name == "app.log.3":
        d = TODAY - timedelta(days=20)
    else:
        d = date.fromisoformat(name.split(".")[2])
    return d.year, d.month, d.day


def test_compresion_deshabilitada_y_ventana_configurable(settings: Settings, logs: Path) -> None:
    for family in VENTANA:
        write(logs, f"{family}.{ago(25)}")
        write(logs, f"{family}.{ago(95)}.gz", gzip.compress(b"x"))
    off = settings.model_copy(update={"LOGS_COMPRESSION_ENABLED": False})
    result = maintain(off, now=NOW)
    assert result.comprimidos == [] and len(result.eliminados) == 4  # la retención sigue
    assert "compresión deshabilitada (LOGS_COMPRESSION_ENABLED=false)" in result.resumen()
    # LOGS_COMPRESSION_DAYS=20 alarga las ventanas cortas; sesiones (30) sigue en 30.
    longer = settings.model_copy(update={"LOGS_COMPRESSION_DAYS": 20, "LOGS_RETENTION_DAYS": 365})
    result = maintain(longer, now=NOW)
    assert sorted(result.comprimidos) == sorted(
        f"{f}.{ago(25)}" for f in ("app.log", "error.log", "health.log")
    )


def test_rotado_que_aun_se_escribe_no_se_comprime(settings: Settings, logs: Path) -> None:
    # Nombre de hace 20 días, pero modificado hace 10 minutos (otro proceso sigue escribiendo en él).
    path = write(logs, f"app.log.{ago(20)}")
    recent = (NOW - timedelta(minutes=10)).timestamp()
    os.utime(path, (recent, recent))
    result = maintain(settings, now=NOW)
    assert result.comprimidos == [] and result.en_uso == [path.name] and path.exists()
    assert maintain(settings, now=NOW + timedelta(hours=2)).comprimidos == [path.name]


def test_un_solo_mantenimiento_a_la_vez_por_carpeta(settings: Settings, logs: Path) -> None:
    with _exclusive(logs):
        with pytest.raises(MantenimientoEnCurso):
            maintain(settings, now=NOW)
    assert maintain(settings, now=NOW).errores == []


def test_estados_que_deja_una_caida_se_terminan(settings: Settings, logs: Path) -> None:
    # a) Murió entre el renombrado y el borrado del original: .gz completo + original.
    a = write(logs, f"app.log.{ago(30)}")
    a_content = a.read_bytes()
    write(logs, a.name + ".gz", gzip.compress(a_content))
    # b) Murió escribiendo: temporal a medias + original.
    b = write(logs, f"error.log.{ago(30)}")
    b_content = b.read_bytes()
    write(logs, b.name + ".gz.parcial", gzip.compress(b_content)[:20])
    # c) Un .gz truncado (no es una compresión nuestra terminada) junto al original: se rehace.
    c = write(logs, f"health.log.{ago(30)}")
    c_content = c.read_bytes()
    write(logs, c.name + ".gz", gzip.compress(c_content)[:-10])
    # d) .gz válido pero con otro contenido: no se borra nada, se informa.
    d = write(logs, f"sesiones.log.{ago(40)}")
    write(logs, d.name + ".gz", gzip.compress(b"otra cosa\n"))
    # e) Temporal huérfano.
    write(logs, f"app.log.{ago(50)}.gz.parcial", b"\x1f\x8b basura")
    # f) Original dentro de su ventana con .gz ya completo (p. ej. comprimido a mano): se termina igual.
    f = write(logs, f"app.log.{ago(2)}")
    write(logs, f.name + ".gz", gzip.compress(f.read_bytes()))

    result = maintain(settings, now=NOW)

    assert sorted(result.recuperados) == sorted([a.name, f.name])
    assert sorted(result.temporales_borrados) == sorted(
        [b.name + ".gz.parcial", f"app.log.{ago(50)}.gz.parcial"]
    )
    assert sorted(result.comprimidos) == sorted([b.name, c.name])
    assert (
        len(result.errores) == 1 and d.name in result.errores[0] and "se conservan ambos" in result.errores[0]
    )
    for path, content in ((a, a_content), (b, b_content), (c, c_content)):
        assert not path.exists() and gzip.decompress((logs / (path.name + ".gz")).read_bytes()) == content
    assert d.exists() and gzip.decompress((logs / (d.name + ".gz")).read_bytes()) == b"otra cosa\n"
    assert not any(p.name.endswith(".parcial") for p in logs.iterdir())


CHILD = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    from datetime import datetime
    from inventario.config import Settings
    from inventario.modules.logs.service import maintain

    directory, mode, now = sys.argv[1:4]
    if mode == "antes_de_borrar":
        # Muere justo antes de borrar el primer original: los .gz ya están renombrados y sincronizados.
        real_unlink = pathlib.Path.unlink
        def unlink(self, missing_ok=False):
            if not self.name.endswith((".gz", ".parcial")):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_unlink(self, missing_ok=missing_ok)
        pathlib.Path.unlink = unlink
    else:
        # Muere mientras sincroniza el segundo .gz temporal (el primero ya está renombrado).
        real_fsync, calls = os.fsync, []
        def fsync(fd):
            calls.append(fd)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_fsync(fd)
        os.fsync = fsync
    maintain(Settings(_env_file=None, LOGS_PATH=directory), now=datetime.fromisoformat(now))
    """
)


@pytest.mark.parametrize("mode", ["antes_de_borrar", "escribiendo"])
def test_caida_real_con_sigkill_y_la_siguiente_corrida_termina(
    settings: Settings, logs: Path, mode: str
) -> None:
    contents = {}
    for i, family in enumerate(VENTANA):
        for days in (40, 41):
            path = write(logs, f"{family}.{ago(days + i)}")
            contents[path.name] = path.read_bytes()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(logs), mode, NOW.isoformat()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr
    names = listing(logs)
    if mode == "antes_de_borrar":
        # Todo comprimido y renombrado; ningún original borrado.
        assert names == set(contents) | {n + ".gz" for n in contents}
    else:
        assert sum(n.endswith(".gz.parcial") for n in names) == 1
        assert sum(n.endswith(".gz") for n in names) == 1
        assert set(contents) <= names  # ningún original se perdió

    result = maintain(settings, now=NOW)
    assert result.errores == []
    assert listing(logs) == {n + ".gz" for n in contents}
    for name, content in contents.items():
        assert gzip.decompress((logs / f"{name}.gz").read_bytes()) == content
    if mode == "antes_de_borrar":
        assert len(result.recuperados) == len(contents) and result.comprimidos == []
    else:
        assert len(result.recuperados) == 1 and len(result.temporales_borrados) == 1
        assert len(result.comprimidos) == len(contents) - 1


@pytest.mark.lento
def test_diez_mil_archivos(settings: Settings, logs: Path) -> None:
    """Escala lineal: una lectura del directorio y un paso por archivo (el tiempo se mide en bench)."""
    compress, delete, n = 0, 0, 0
    for family, window in VENTANA.items():
        for days in range(250):
            for k in range(12):
                suffix = "" if k == 0 else f".{k}"
                if days < 180:
                    write(
                        logs,
                        f"{family}.{ago(days)}{suffix}",
                        b"x" * 64,
                        mtime_day=TODAY - timedelta(days=days),
                    )
                    compress += window < days <= 90
                    delete += days > 90  # pasó la retención sin comprimirse: se borra
                elif k % 2 == 0:
                    write(logs, f"{family}.{ago(days)}{suffix}.gz", b"\x1f\x8b", mtime_day=TODAY)
                    delete += 1
                else:
                    continue
                n += 1
    assert n >= 10_000
    result = maintain(settings, now=NOW)
    assert result.errores == []
    assert len(result.comprimidos) == compress and len(result.eliminados) == delete
    again = maintain(settings, now=NOW)
    assert (len(again.comprimidos), len(again.eliminados)) == (0, 0)


def test_el_job_registra_el_resultado_por_maquina(runtime: Runtime, settings: Settings, logs: Path) -> None:
    from inventario.modules.planificador.service import JobsService

    real_today = datetime.now(settings.tz).date()
    write(logs, f"app.log.{real_today - timedelta(days=8)}")
    row = JobsService(runtime).run_now("logs_maintenance")
    assert row.estado == "OK", row.mensaje
    assert row.mensaje.startswith(f"Logs en {logs}: 1 archivo comprimido (")
    # Cada máquina (y carpeta de logs) tiene su propia corrida: cada una cuida sus archivos.
    assert row.ambito == f"{socket.gethostname()}:{logs}"
