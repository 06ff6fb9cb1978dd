"""La limpieza de secretos del log: sigue borrando cada secreto y no se deja frenar por una línea
enorme elegida por un atacante (la URL de una petición sin login llega al log de acceso)."""

from __future__ import annotations

import logging

from hypothesis import assume, given
from hypothesis import strategies as st

from inventario.logging_setup import MAX_MESSAGE, RedactSecrets, bounded, redact

# Texto alrededor: letras, dígitos, espacios, puntuación de URLs/JSON/cabeceras y algo de unicode.
_AROUND = st.text(alphabet=st.sampled_from(list("abcXYZ09 _-.:=&?/;,'\"{}[]@\tñ")), max_size=40)
_KEYS = st.sampled_from(
    [
        "password",
        "PASSWORD",
        "hash_password",
        "passwd",
        "contraseña",
        "contrasena",
        "SECRET_KEY",
        "client_secret",
        "token",
        "access_token",
        "refresh-token",
        "api_key",
        "apikey",
        "API-KEY",
    ]
)
_SEPS = st.sampled_from(["=", ": ", ":", " = ", '": ', '":', "'=", "' : "])
# Los secretos llevan una marca que el texto de alrededor no puede contener.
_UNQUOTED = st.text(
    alphabet=st.sampled_from(list("abcdefXYZ0123456789.-_~+/!@#$%*()")), min_size=1, max_size=30
)
_QUOTED_BODY = st.text(alphabet=st.sampled_from(list("abcXYZ0189 .-_!@#$%&;,:=ñ")), min_size=1, max_size=30)
MARK = "Q7Q"


@given(_AROUND, _KEYS, _SEPS, _UNQUOTED, _AROUND)
def test_valor_sin_comillas_se_borra(before: str, key: str, sep: str, value: str, after: str) -> None:
    secret = MARK + value
    line = f"{before} {key}{sep}{secret}{after}"
    assert MARK not in redact(line)


@given(_AROUND, _KEYS, _SEPS, st.sampled_from(['"', "'"]), _QUOTED_BODY, _AROUND)
def test_valor_entre_comillas_se_borra_con_espacios(
    before: str, key: str, sep: str, quote: str, body: str, after: str
) -> None:
    assume(quote not in body)
    line = f"{before} {key}{sep}{quote}{MARK}{body}{quote}{after}"
    assert MARK not in redact(line)


@given(_AROUND, st.text(alphabet=st.sampled_from(list("abcXYZ019-_.=~+/")), min_size=1, max_size=40), _AROUND)
def test_bearer_url_con_clave_y_jwt_suelto(before: str, token: str, after: str) -> None:
    assert MARK not in redact(f"{before} Authorization: Bearer {MARK}{token} {after}")
    assert MARK not in redact(
        f"{before} postgresql://usuario:{MARK}{token.replace('/', '')}@db:5432/x {after}"
    )
    payload = "".join(c for c in token if c.isalnum() or c in "-_")
    jwt = f"eyJ{MARK}hbGc.eyJzdWIi{payload}.firma{MARK}"
    redacted = redact(f"{before} {jwt} {after}")
    assert MARK not in redacted and "firma" not in redacted


def test_se_borra_el_valor_no_la_linea() -> None:
    assert redact("GET /x?usuario=ana&password=abc&pagina=2") == "GET /x?usuario=ana&password=***&pagina=2"
    assert redact('{"password": "con espacios", "x": 1}') == '{"password": "***", "x": 1}'
    assert redact("nombre=ana contraseña: hunter2 fin") == "nombre=ana contraseña: *** fin"
    assert redact("nada oculto: a=b, c: d") == "nada oculto: a=b, c: d"


# Las entradas que hacían cuadrática la versión anterior (su primer patrón empezaba con `[\w-]*`
# sin ancla: desde cada posición recorría la racha entera). Con 15 000 caracteres tardaba ~18 s.
LONG = 15_000
ADVERSARIAL = [
    "A" * LONG,
    "a-" * (LONG // 2),
    "password" * (LONG // 8),
    "/nope?" + "A" * LONG,
    "x=" * (LONG // 2),
    "eyJ" + "a" * LONG,
    "eyJa." * (LONG // 5),
    "://a:" * (LONG // 5),
    "bearer " * (LONG // 7),
    '"' + "a" * LONG,
]


def test_lineas_enormes_se_limpian_y_se_acortan_sin_perder_el_secreto() -> None:
    """Lo que se mide aquí es el trabajo: cada entrada se recorre una vez (el tiempo, en
    bench/redaccion.py). El filtro entrega a lo sumo MAX_MESSAGE caracteres al archivo."""
    redactor = RedactSecrets()
    for text in ADVERSARIAL:
        line = f'GET {text} password=hunter2 HTTP/1.1"'
        clean = redact(line)
        assert "hunter2" not in clean
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", (line,), None)
        assert redactor.filter(record)
        message = record.getMessage()
        assert len(message) < MAX_MESSAGE + 100 and message.startswith(clean[:100])
        assert ("caracteres omitidos" in message) == (len(clean) > MAX_MESSAGE)


def test_bounded_no_toca_lo_corto() -> None:
    assert bounded("corto") == "corto"
    assert bounded("x" * 20, limit=10) == "x" * 10 + "… (10 caracteres omitidos)"
