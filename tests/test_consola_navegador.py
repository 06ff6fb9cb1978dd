"""La consola en un Chromium real (Debian: `chromium` + `chromium-driver`, manejado con Selenium),
contra un `inventario serve` de verdad en loopback. Nada se descarga al correr: sin el navegador
instalado, estas pruebas se saltan y dicen cómo instalarlo.

Las capturas de cada página (ventana fija de 1280×900) quedan en docs/img/ y las muestra el README.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inventario.postgres import DatabaseServer
from tests.conftest import ADMIN_PASSWORD, TEMPLATE, create_database, drop_database, run_cli
from tests.servicio_support import puerto_libre

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CAPTURAS = Path(__file__).resolve().parent.parent / "docs" / "img"
ANCHO, ALTO = 1280, 900

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Falta el navegador de las pruebas de la consola: instálelo con "
        "`sudo apt-get install chromium chromium-driver` (Debian/Ubuntu)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  # tras comprobar que hay navegador
from selenium.common.exceptions import (  # noqa: E402  # tras comprobar que hay navegador
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)  # tras comprobar que hay navegador
from selenium.webdriver.chrome.service import Service  # noqa: E402  # tras comprobar que hay navegador
from selenium.webdriver.common.by import By  # noqa: E402  # tras comprobar que hay navegador
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402  # tras comprobar que hay navegador
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402  # tras comprobar que hay navegador
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402  # tras comprobar que hay navegador

pytestmark = pytest.mark.lento


class Servidor:
    """Un `inventario serve` real sobre una base propia, y una API para preparar y comprobar."""

    def __init__(self, url: str, env: dict[str, str], proceso: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.env = env
        self.proceso = proceso
        self._token: str | None = None

    def api(self, metodo: str, ruta: str, cuerpo: Any = None) -> Any:
        if self._token is None:
            self._token = self._pedir(
                "POST", "/api/v1/auth/login", {"nombre_usuario": "admin", "password": ADMIN_PASSWORD}, None
            )["access_token"]
        return self._pedir(metodo, ruta, cuerpo, self._token)

    def _pedir(self, metodo: str, ruta: str, cuerpo: Any, token: str | None) -> Any:
        datos = json.dumps(cuerpo).encode() if cuerpo is not None else None
        req = urllib.request.Request(self.url + ruta, data=datos, method=metodo)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())


@pytest.fixture(scope="module")
def servidor(pg_server: DatabaseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servidor]:
    from inventario.postgres import pgserver_bin_dir

    base = tmp_path_factory.mktemp("consola")
    nombre = f"consola_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    create_database(pg_server, nombre, TEMPLATE)
    db = pg_server.with_database(nombre)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db.url.render_as_string(hide_password=False),
        BACKUP_PATH=str(base / "backups"),
        LOGS_PATH=str(base / "logs"),
        DATA_PATH=str(base / "data"),
        SECRET_KEY="clave-de-pruebas-" + "x" * 32,
        INVENTARIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEALTH_DISCO_MIN_MB="0",
        # Sin la corrida de recuperación al arrancar: su backup chocaría (409) con el de la prueba.
        SCHEDULER_GRACIA_MIN="1",
        ZONA_HORARIA="America/Mexico_City",
    )
    if db.embedded:
        env["PG_BIN_DIR"] = str(pgserver_bin_dir())
    # Datos de demostración: las capturas muestran una tienda, no tablas vacías.
    demo = run_cli(
        env,
        "demo",
        "--productos",
        "40",
        "--lotes-por-producto",
        "2",
        "--movimientos",
        "300",
        "--semilla",
        "7",
    )
    assert demo.returncode == 0, demo.stderr
    puerto = puerto_libre()
    exe = Path(sys.executable).with_name("inventario")
    # La salida a un archivo, no a una tubería que nadie lee durante las pruebas.
    salida = open(base / "serve.log", "wb")
    proceso = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(puerto)],
        env=env,
        stdout=salida,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{puerto}"
    try:
        limite = time.monotonic() + 120
        while True:
            if proceso.poll() is not None:
                raise AssertionError((base / "serve.log").read_text())
            try:
                with urllib.request.urlopen(url + "/health", timeout=5):
                    break
            except OSError:
                if time.monotonic() > limite:
                    raise
                time.sleep(0.3)
        yield Servidor(url, env, proceso)
    finally:
        proceso.terminate()
        try:
            proceso.wait(60)
        except subprocess.TimeoutExpired:
            proceso.kill()
            proceso.wait()
        salida.close()
        drop_database(pg_server, nombre)


@pytest.fixture(scope="module")
def descargas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("descargas")


@pytest.fixture
def navegador(descargas: Path) -> Iterator[WebDriver]:
    opciones = webdriver.ChromeOptions()
    opciones.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={ANCHO},{ALTO}",
        "--lang=es",
    ):
        opciones.add_argument(arg)
    opciones.add_experimental_option(
        "prefs", {"download.default_directory": str(descargas), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opciones)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def entrar(nav: WebDriver, servidor: Servidor, usuario: str, password: str) -> None:
    nav.get(servidor.url + "/consola/entrar")
    nav.find_element(By.ID, "nombre_usuario").clear()
    nav.find_element(By.ID, "nombre_usuario").send_keys(usuario)
    nav.find_element(By.ID, "password").send_keys(password)
    pulsar(nav, nav.find_element(By.CSS_SELECTOR, "form button[type=submit]"))


def pulsar(nav: WebDriver, elemento: WebElement) -> None:
    """Pulsa un enlace o botón que carga otra página y espera a que esa página haya llegado."""
    anterior = nav.find_element(By.TAG_NAME, "html")
    elemento.click()
    WebDriverWait(nav, 120).until(_caducado(anterior))


def _caducado(elemento: WebElement) -> Callable[[WebDriver], bool]:
    """`staleness_of`, salvo que en plena navegación chromedriver a veces responde "Node with given id
    does not belong to the document" en vez de "stale element": también quiere decir que la página
    anterior ya no está (falló así una vez en CI)."""

    def condicion(_: WebDriver) -> bool:
        try:
            elemento.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return True
            raise
        return False

    return condicion


def esperar(nav: WebDriver, condicion: Callable[[WebDriver], Any], segundos: float = 60) -> Any:
    # La página del backup se recarga sola: un elemento leído justo antes de la recarga caduca.
    ignorar = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(nav, segundos, poll_frequency=0.25, ignored_exceptions=ignorar).until(condicion)


def capturar(nav: WebDriver, nombre: str, desplazar: bool = True) -> None:
    CAPTURAS.mkdir(parents=True, exist_ok=True)
    if desplazar:
        nav.execute_script("window.scrollTo(0, 0)")
    assert nav.save_screenshot(str(CAPTURAS / f"consola_{nombre}.png"))


def aviso(nav: WebDriver) -> str:
    return str(nav.find_element(By.CSS_SELECTOR, ".aviso").text)


def test_entrar_backup_completo_y_descarga(servidor: Servidor, navegador: WebDriver, descargas: Path) -> None:
    nav = navegador
    nav.get(servidor.url + "/consola")
    assert nav.current_url.endswith("/consola/entrar")
    capturar(nav, "entrar")
    entrar(nav, servidor, "admin", "contraseña-equivocada")
    assert "Usuario o contraseña incorrectos" in aviso(nav)
    entrar(nav, servidor, "admin", ADMIN_PASSWORD)
    esperar(nav, lambda d: d.current_url.endswith("/consola/panel"))
    # La cookie de sesión no es legible desde JavaScript (HttpOnly).
    assert "consola_sesion" not in nav.execute_script("return document.cookie")
    cookie = nav.get_cookie("consola_sesion")
    assert cookie is not None and cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"

    pulsar(nav, nav.find_element(By.LINK_TEXT, "Backups"))
    pulsar(nav, nav.find_element(By.ID, "ejecutar-completo"))
    esperar(nav, lambda d: "/consola/backups/" in d.current_url)
    # La página se recarga sola (meta refresh) hasta que el backup termina.
    esperar(nav, lambda d: d.find_element(By.ID, "estado").text in ("COMPLETADO", "ERROR"), 180)
    assert nav.find_element(By.ID, "estado").text == "COMPLETADO"
    id_backup = int(nav.current_url.rstrip("/").rsplit("/", 1)[1])
    catalogo = servidor.api("GET", f"/api/v1/backup/{id_backup}")
    assert catalogo["estado"] == "COMPLETADO" and catalogo["ejecutado_por"] == "admin"
    assert nav.find_element(By.ID, "comando").text == f".venv/bin/inventario backup restaurar {id_backup}"
    capturar(nav, "backup")

    nav.find_element(By.ID, "descargar").click()
    archivo = descargas / catalogo["nombre_archivo"]
    esperar(nav, lambda d: archivo.exists() and not list(descargas.glob("*.crdownload")), 60)
    assert hashlib.md5(archivo.read_bytes()).hexdigest() == catalogo["hash_md5"]

    pulsar(nav, nav.find_element(By.ID, "verificar"))
    assert aviso(nav).startswith("Verificado:")

    nav.get(servidor.url + "/consola/backups")
    assert str(id_backup) in nav.find_element(By.TAG_NAME, "table").text
    capturar(nav, "backups")
    nav.get(servidor.url + "/consola/panel")
    assert nav.find_elements(By.CSS_SELECTOR, "svg.grafico rect.barra")  # el gráfico con el backup
    capturar(nav, "panel")
    nav.execute_script("document.getElementById('alertas').scrollIntoView()")
    capturar(nav, "panel_grafico", desplazar=False)
    nav.get(servidor.url + "/consola/tareas")
    jobs = servidor.api("GET", "/api/v1/jobs")
    assert len(nav.find_elements(By.CSS_SELECTOR, "tr[id^=tarea-]")) == len(jobs) >= 3
    pulsar(nav, nav.find_element(By.CSS_SELECTOR, "#tarea-alertas_diarias button"))
    assert aviso(nav).startswith("alertas_diarias: OK")
    assert "manual, admin" in nav.find_element(By.ID, "tarea-alertas_diarias").text
    capturar(nav, "tareas")
    nav.get(servidor.url + "/consola/inventario")
    capturar(nav, "inventario")
    servidor.api(
        "POST",
        "/api/v1/usuarios",
        {"nombre_usuario": "cajero", "nombre_completo": "Cajero de la mañana", "password": "cajero-1234"},
    )
    nav.get(servidor.url + "/consola/usuarios")
    assert "cajero" in nav.find_element(By.TAG_NAME, "table").text
    capturar(nav, "usuarios")


def test_marcar_notificacion_leida(servidor: Servidor, navegador: WebDriver) -> None:
    creada = servidor.api(
        "POST",
        "/api/v1/notificaciones",
        {
            "tipo": "PRUEBA",
            "titulo": "Revisar la balanza",
            "mensaje": "Calibración vencida",
            "semaforo": "AMARILLO",
        },
    )
    nav = navegador
    entrar(nav, servidor, "admin", ADMIN_PASSWORD)
    nav.get(servidor.url + "/consola/notificaciones?leida=no")
    capturar(nav, "notificaciones")
    fila = nav.find_element(By.ID, f"notificacion-{creada['id_notificacion']}")
    pulsar(nav, fila.find_element(By.TAG_NAME, "button"))
    assert "«Revisar la balanza» leída" in aviso(nav)
    assert not nav.find_elements(By.ID, f"notificacion-{creada['id_notificacion']}")  # filtro: sin leer
    estado = servidor.api("GET", f"/api/v1/notificaciones/{creada['id_notificacion']}")
    assert estado["leida"] is True


def test_operador_no_llega_a_backups_ni_usuarios(servidor: Servidor, navegador: WebDriver) -> None:
    servidor.api(
        "POST",
        "/api/v1/usuarios",
        {"nombre_usuario": "mostrador", "password": "mostrador-1234", "rol": "OPERADOR"},
    )
    nav = navegador
    entrar(nav, servidor, "mostrador", "mostrador-1234")
    esperar(nav, lambda d: d.current_url.endswith("/consola/inventario"))
    menu = nav.find_element(By.TAG_NAME, "nav").text
    assert "Inventario" in menu and "Notificaciones" in menu
    assert "Backups" not in menu and "Usuarios" not in menu and "Panel" not in menu
    for ruta in ("backups", "usuarios", "panel", "tareas"):
        nav.get(f"{servidor.url}/consola/{ruta}")
        assert nav.find_element(By.TAG_NAME, "h1").text == "Sin permiso", ruta
        assert "solo para administradores" in aviso(nav)


def test_formulario_sin_token_csrf_rechazado(servidor: Servidor, navegador: WebDriver) -> None:
    nav = navegador
    entrar(nav, servidor, "admin", ADMIN_PASSWORD)
    nav.get(servidor.url + "/consola/notificaciones")
    antes = servidor.api("GET", "/api/v1/notificaciones?leida=false")["total"]
    # Quitar el token del formulario, como lo enviaría una página de otro sitio.
    nav.execute_script("document.querySelector('#leer-todas').form.querySelector('[name=csrf]').remove()")
    nav.execute_script("document.querySelector('#leer-todas').disabled = false")
    pulsar(nav, nav.find_element(By.ID, "leer-todas"))
    assert "CSRF" in aviso(nav)
    assert nav.find_element(By.TAG_NAME, "h1").text == "Sin permiso"
    assert servidor.api("GET", "/api/v1/notificaciones?leida=false")["total"] == antes


def test_panel_rojo_con_directorio_de_backups_inutilizable(servidor: Servidor, navegador: WebDriver) -> None:
    directorio = Path(servidor.env["BACKUP_PATH"])
    apartado = directorio.with_name("backups-apartado")
    nav = navegador
    entrar(nav, servidor, "admin", ADMIN_PASSWORD)
    directorio.mkdir(exist_ok=True)
    directorio.rename(apartado)
    try:
        directorio.write_text("no soy un directorio")
        nav.get(servidor.url + "/consola/panel")
        general = nav.find_element(By.CSS_SELECTOR, "#semaforo h2 .luz")
        assert general.text == "ROJO"
        assert "El directorio de backups no es utilizable" in nav.find_element(By.ID, "semaforo").text
        capturar(nav, "panel_rojo")
    finally:
        directorio.unlink(missing_ok=True)
        apartado.rename(directorio)
    nav.get(servidor.url + "/consola/panel")
    assert "no es utilizable" not in nav.find_element(By.ID, "semaforo").text
    shutil.rmtree(apartado, ignore_errors=True)
