"""La ayuda y los errores de la consola en español.

Click y Typer escriben sus textos ("Usage:", "Show this message and exit.", "No such command...")
con `gettext` en el dominio global, y no traen catálogo en español: un usuario nuevo veía la ayuda
mitad en inglés. Sus módulos toman `gettext`/`ngettext` como nombres propios (`_`, `ngettext`) al
importarse: `instalar()` pone en su lugar estas dos funciones, que traducen con la tabla de abajo.
Lo que no está en la tabla (mensajes para quien programa, no para quien usa la consola) sale tal cual.

Las versiones nuevas de Typer traen su propia copia de Click sin gettext: sus textos fijos ("Usage:",
"Show this message and exit.", los errores de uso) se traducen a la salida de los métodos que los
devuelven. Si una versión futura cambia esos textos, la prueba de la consola en español lo dice.
"""

from __future__ import annotations

import functools
import gettext
import importlib
import importlib.util
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

TEXTOS: dict[str, str] = {
    # Ayuda
    "Usage:": "Uso:",
    "Options": "Opciones",
    "Arguments": "Argumentos",
    "Commands": "Órdenes",
    "Positional arguments": "Argumentos",
    "Show this message and exit.": "Muestra esta ayuda y sale.",
    "Show the version and exit.": "Muestra la versión y sale.",
    "%(prog)s, version %(version)s": "%(prog)s, versión %(version)s",
    "Confirm the action without prompting.": "Confirma sin preguntar.",
    "Do you want to continue?": "¿Desea continuar?",
    "deprecated": "obsoleta",
    "(deprecated) ": "(obsoleta) ",
    "required": "obligatorio",
    "[required]": "[obligatorio]",
    "env var: {var}": "variable de entorno: {var}",
    "[env var: {}]": "[variable de entorno: {}]",
    "default: {default}": "por defecto: {default}",
    "[default: {}]": "[por defecto: {}]",
    "(dynamic)": "(dinámico)",
    # Errores de uso
    "Error": "Error",
    "Error: {message}": "Error: {message}",
    "Try '{command} {option}' for help.": "Pruebe '{command} {option}' para ver la ayuda.",
    "Try [blue]'{command_path} {help_option}'[/] for help.": "Pruebe [blue]'{command_path} {help_option}'[/] para ver la ayuda.",
    "Missing command.": "Falta la orden.",
    "No such command {name!r}.": "No existe la orden {name!r}.",
    "No such option {name!r}.": "No existe la opción {name!r}.",
    "Did you mean {possibility}?": "¿Quiso decir {possibility}?",
    "Missing argument": "Falta el argumento",
    "Missing option": "Falta la opción",
    "Missing parameter": "Falta el parámetro",
    "Missing {param_type}": "Falta {param_type}",
    "Missing parameter: {param_name}": "Falta el parámetro: {param_name}",
    "argument": "el argumento",
    "option": "la opción",
    "parameter": "el parámetro",
    "Invalid value: {message}": "Valor no válido: {message}",
    "Invalid value for {param_hint}: {message}": "Valor no válido para {param_hint}: {message}",
    "Option {name!r} does not take a value.": "La opción {name!r} no lleva valor.",
    "Argument {name!r} takes {nargs} values.": "El argumento {name!r} lleva {nargs} valores.",
    "Invalid start character for option ({option})": "Carácter inicial no válido en la opción ({option})",
    "Could not open file {filename!r}: {message}": "No se pudo abrir el archivo {filename!r}: {message}",
    "unknown error": "error desconocido",
    "Aborted!": "Cancelado.",
    "Aborted.": "Cancelado.",
    # Valores
    "{value!r} is not a valid {number_type}.": "{value!r} no es un {number_type} válido.",
    "integer": "entero",
    "float": "número",
    "{value} is not in the range {range}.": "{value} no está en el rango {range}.",
    "{value!r} is not a valid boolean. Recognized values: {states}": "{value!r} no es un valor sí/no válido. Valores reconocidos: {states}",
    "{value!r} is not a valid UUID.": "{value!r} no es un UUID válido.",
    "{value!r} does not match the format {format}.": "{value!r} no tiene el formato {format}.",
    "file": "El archivo",
    "directory": "La carpeta",
    "path": "La ruta",
    "{name} {filename!r} does not exist.": "{name} {filename!r} no existe.",
    "{name} {filename!r} is a file.": "{name} {filename!r} es un archivo.",
    "{name} {filename!r} is a directory.": "{name} {filename!r} es una carpeta.",
    "{name} {filename!r} is not readable.": "{name} {filename!r} no se puede leer.",
    "{name} {filename!r} is not writable.": "{name} {filename!r} no se puede escribir.",
    "{name} {filename!r} is not executable.": "{name} {filename!r} no es ejecutable.",
    "Repeat for confirmation": "Repita para confirmar",
    "Error: The two entered values do not match.": "Error: los dos valores no coinciden.",
    "Error: invalid input": "Error: entrada no válida",
    "Press any key to continue...": "Pulse una tecla para continuar...",
}

# Singular → (singular, plural) en español.
PLURALES: dict[str, tuple[str, str]] = {
    "Got unexpected extra argument ({args})": (
        "Sobra un argumento ({args})",
        "Sobran argumentos ({args})",
    ),
    "Option {name!r} requires an argument.": (
        "La opción {name!r} necesita un valor.",
        "La opción {name!r} necesita {nargs} valores.",
    ),
    "Takes {nargs} values but 1 was given.": (
        "Lleva {nargs} valores y se dio 1.",
        "Lleva {nargs} valores y se dieron {len}.",
    ),
    "Did you mean {possibility}?": (
        "¿Quiso decir {possibility}?",
        "(¿Quiso decir alguna de: {possibilities}?)",
    ),
    "{value!r} is not {choice}.": ("{value!r} no es {choice}.", "{value!r} no es ninguna de {choices}."),
    "{value!r} does not match the format {format}.": (
        "{value!r} no tiene el formato {format}.",
        "{value!r} no tiene ninguno de los formatos {formats}.",
    ),
}

# Títulos de Typer que se calculan al importarlo (con el `gettext` de entonces): su texto en inglés.
_ORIGINALES = {
    "DEPRECATED_STRING": "(deprecated) ",
    "DEFAULT_STRING": "[default: {}]",
    "ENVVAR_STRING": "[env var: {}]",
    "REQUIRED_LONG_STRING": "[required]",
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commands",
    "ERRORS_PANEL_TITLE": "Error",
    "ABORTED_TEXT": "Aborted.",
    "RICH_HELP": "Try [blue]'{command_path} {help_option}'[/] for help.",
}
_TITULOS_TYPER = tuple(_ORIGINALES)


def traducir(mensaje: str) -> str:
    return TEXTOS.get(mensaje, mensaje)


def traducir_plural(singular: str, plural: str, n: int) -> str:
    if singular in PLURALES:
        uno, varios = PLURALES[singular]
        return uno if n == 1 else varios
    return singular if n == 1 else plural


# Textos fijos (sin gettext) de los mensajes de error de uso: expresión → reemplazo.
ERRORES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(patron, re.DOTALL), reemplazo)
    for patron, reemplazo in (
        (
            r"^No such option: (.+?) \(Possible options: (.+)\)$",
            r"No existe la opción \1 (las parecidas: \2)",
        ),
        (r"^No such option: (.+)$", r"No existe la opción \1"),
        (r"^Option (.+) requires an argument\.$", r"La opción \1 necesita un valor."),
        (r"^Option (.+) requires (\d+) arguments\.$", r"La opción \1 necesita \2 valores."),
        (r"^Option (.+) does not take a value\.$", r"La opción \1 no lleva valor."),
        (r"^Missing argument(.*)$", r"Falta el argumento\1"),
        (r"^Missing option(.*)$", r"Falta la opción\1"),
        (r"^Missing parameter(.*)$", r"Falta el parámetro\1"),
        (r"^Got unexpected extra argument(?:s|\(s\))? \((.+)\)$", r"Sobran argumentos: \1"),
        (r"^Invalid value for (.+?): (.+)$", r"Valor no válido para \1: \2"),
        (r"^Invalid value: (.+)$", r"Valor no válido: \1"),
        (r"Value (.+) is not a valid int\.", r"\1 no es un número entero."),
        (r"Value (.+) is not a valid float\.", r"\1 no es un número."),
        (r"Value (.+) is not a valid (.+)\.", r"\1 no es un valor válido (\2)."),
        (r"(.+) is not a valid integer\.", r"\1 no es un número entero."),
        (r"(.+) is not one of (.+)\.", r"\1 no es ninguno de \2."),
        (r"(.+) is not in the range (.+)\.", r"\1 no está en el rango \2."),
        (r"Could not open file (.+?): (.+)$", r"No se pudo abrir el archivo \1: \2"),
        # Typer valida con pydantic: sus mensajes más comunes.
        (r"Input should be a valid integer.*$", r"debe ser un número entero"),
        (r"Input should be a valid number.*$", r"debe ser un número"),
        (r"Input should be a valid boolean.*$", r"debe ser sí o no (true/false)"),
        (r"Input should be greater than or equal to (\S+)", r"debe ser mayor o igual que \1"),
        (r"Input should be less than or equal to (\S+)", r"debe ser menor o igual que \1"),
        (r"Input should be greater than (\S+)", r"debe ser mayor que \1"),
        (r"Input should be less than (\S+)", r"debe ser menor que \1"),
        (r"Input should be (.+)$", r"debe ser \1"),
    )
)


def traducir_error(mensaje: str) -> str:
    for patron, reemplazo in ERRORES:
        mensaje = patron.sub(reemplazo, mensaje)
    return mensaje


def _modulos_gettext() -> list[ModuleType]:
    """Los módulos de Click y Typer que toman `gettext` al importarse (según la versión, Typer usa
    Click o su propia copia, que no pasa por gettext)."""
    nombres = [
        "click.core",
        "click.decorators",
        "click.exceptions",
        "click.formatting",
        "click.parser",
        "click.termui",
        "click.types",
        "click.utils",
        "typer.core",
        "typer.rich_utils",
    ]
    return [importlib.import_module(n) for n in nombres if importlib.util.find_spec(n) is not None]


def _clases_de_error() -> list[type]:
    """Las excepciones de uso que Typer muestra, con su propio `format_message`."""
    clases: list[type] = []
    for nombre in ("click.exceptions", "typer._click.exceptions"):
        if importlib.util.find_spec(nombre.rpartition(".")[0]) is None:
            continue
        try:
            modulo = importlib.import_module(nombre)
        except ImportError:
            continue
        for valor in vars(modulo).values():
            if isinstance(valor, type) and issubclass(valor, Exception):
                propias = [c for c in valor.__mro__ if "format_message" in vars(c)]
                clases.extend(c for c in propias if c not in clases)
    return clases


def _clases_de_orden() -> list[type]:
    """Las clases de orden de Typer y sus bases (`get_usage`, `get_help_option`, `collect_usage_pieces`)."""
    import typer.core

    vistas: list[type] = []
    for clase in (typer.core.TyperCommand, typer.core.TyperGroup):
        for base in clase.__mro__:
            if base is not object and base not in vistas:
                vistas.append(base)
    return vistas


def _envolver(clase: type, metodo: str, despues: Callable[[Any], Any]) -> None:
    original = vars(clase).get(metodo)
    if original is None or getattr(original, "en_espanol", False):
        return

    @functools.wraps(original)
    def envuelto(self: Any, *args: Any, **kwargs: Any) -> Any:
        return despues(original(self, *args, **kwargs))

    envuelto.en_espanol = True  # type: ignore[attr-defined]  # marca: no envolver dos veces
    setattr(clase, metodo, envuelto)


def _uso(texto: str) -> str:
    # "[OPTIONS]" y "COMMAND [ARGS]..." ya vienen traducidos de `collect_usage_pieces` (ver `_piezas`).
    return texto.replace("Usage: ", "Uso: ")


def _piezas(piezas: list[str]) -> list[str]:
    return [METAVARS.get(p, p) for p in piezas]


def _opcion_de_ayuda(opcion: Any) -> Any:
    if opcion is not None and getattr(opcion, "help", None) == "Show this message and exit.":
        opcion.help = TEXTOS["Show this message and exit."]
    return opcion


METAVARS = {"[OPTIONS]": "[OPCIONES]", "COMMAND [ARGS]...": "ORDEN [ARGS]..."}


def instalar() -> None:
    """Traduce la ayuda y los errores de Click y Typer (idempotente)."""
    reemplazos: dict[Callable[..., str], Callable[..., str]] = {
        gettext.gettext: traducir,
        gettext.ngettext: traducir_plural,
    }
    for modulo in _modulos_gettext():
        for nombre in ("_", "gettext", "ngettext"):
            actual = getattr(modulo, nombre, None)
            if actual in reemplazos:
                setattr(modulo, nombre, reemplazos[actual])
    from typer import rich_utils

    for nombre in _TITULOS_TYPER:
        actual = getattr(rich_utils, nombre, None)
        if isinstance(actual, str):
            setattr(rich_utils, nombre, traducir(_ORIGINALES.get(nombre, actual)))
    for clase in _clases_de_error():
        _envolver(clase, "format_message", traducir_error)
    for clase in _clases_de_orden():
        _envolver(clase, "get_usage", _uso)
        _envolver(clase, "collect_usage_pieces", _piezas)
        _envolver(clase, "get_help_option", _opcion_de_ayuda)
