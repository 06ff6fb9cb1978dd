"""Medida 7: un COMPLETO con su copia fuera del sitio (cifrar con age + subir a un S3 en loopback)
contra el mismo COMPLETO sin ella, y la memoria del proceso mientras copia un archivo grande y uno chico."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pyrage import x25519

from bench.entorno import Entorno
from bench.medidas import Resultado, median, next_second, retire, timed
from bench.memoria import Muestreo, tree_rss
from inventario.modules.backup.service import BackupService
from inventario.modules.remoto.service import RemotoService
from inventario.runtime import Runtime
from tests.remoto_support import destino

MB = 1048576


def m7_fuera_del_sitio(ent: Entorno, reps: int) -> Resultado:
    identity = x25519.Identity.generate()
    with destino("s3", ent.home / "remoto-bench") as dest:
        settings = ent.settings.model_copy(
            update={
                "BACKUP_REMOTO": dest.remote,
                "BACKUP_REMOTO_CONFIG": str(dest.config),
                "BACKUP_CIFRADO_DESTINATARIOS": str(identity.to_public()),
            }
        )
        remote_rt: Runtime = dataclasses.replace(ent.runtime, settings=settings, owns_server=False)
        plain = BackupService(ent.runtime, notifier=None)
        remoto = RemotoService(remote_rt)
        sin: list[float] = []
        con: list[float] = []
        copia: list[float] = []
        full_peak: list[int] = []
        full_tree_peak: list[int] = []
        size = 0
        for _ in range(reps):
            next_second()
            seconds, row = timed(lambda: plain.run("COMPLETO", "BENCH"))
            sin.append(seconds)
            retire(ent, row)
            next_second()
            before_own, _ = tree_rss(os.getpid())
            started_row: list[int] = []

            def full_and_copy(started_row: list[int] = started_row, before_own: int = before_own) -> None:
                done = plain.run("COMPLETO", "BENCH")
                started_row.append(done.id_backup)
                with Muestreo(os.getpid()) as sample:
                    seconds_copy, _ = timed(lambda: remoto.copy(done.id_backup))
                copia.append(seconds_copy)
                full_peak.append(sample.max_proceso - before_own)
                full_tree_peak.append(sample.max_arbol - before_own)

            seconds, _ = timed(full_and_copy)
            con.append(seconds)
            with ent.runtime.session_factory() as session:
                from inventario.modules.backup.model import HistorialBackup

                last = session.get(HistorialBackup, started_row[0])
                assert last is not None
                size = last.tamanio_bytes or 0
        # Lo mismo con un archivo chico (un diferencial sin cambios): si la copia es por streaming, la
        # memoria que usa no depende del tamaño del archivo.
        next_second()
        small = plain.run("DIFERENCIAL", "BENCH")
        before_own, _ = tree_rss(os.getpid())
        with Muestreo(os.getpid()) as sample:
            remoto.copy(small.id_backup)
        small_peak = sample.max_proceso - before_own
        remote_bytes = sum(p.stat().st_size for p in Path(dest.storage).iterdir())
    ratio = median(con) / median(sin)
    growth = max(full_peak) - small_peak
    return Resultado(
        7,
        "COMPLETO + copia fuera del sitio (age + S3 loopback)",
        f"{median(con):.2f} s (copia {median(copia):.2f} s), {size / MB:.2f} MB; RSS del proceso "
        f"+{max(full_peak) / MB:.1f} MB (archivo grande) vs +{small_peak / MB:.1f} MB (chico)",
        f"el mismo COMPLETO sin copia: {median(sin):.2f} s",
        ratio,
        "≤ 1.15 y RSS sin crecer con el archivo",
        ratio <= 1.15 and growth <= 16 * MB,
        {
            "con_copia_s": con,
            "sin_copia_s": sin,
            "copia_s": copia,
            "bytes_archivo": size,
            "bytes_en_remoto": remote_bytes,
            "rss_proceso_copia_grande_bytes": full_peak,
            "rss_arbol_copia_grande_bytes": full_tree_peak,
            "rss_proceso_copia_chica_bytes": small_peak,
            "crecimiento_rss_bytes": growth,
        },
    )
