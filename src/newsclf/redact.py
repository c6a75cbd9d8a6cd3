"""Keep secrets out of everything newsclf logs, prints or stores: params, config files, the
console, log files and Hydra's record of the command line.

Two rules. A value whose key looks like a secret (``password``, ``db_pwd``, ``auth_header``,
``hf_token``, ...) becomes ``***``, whole. In any text, a URI loses its user information
(``http://user:pw@host``, ``http://TOKEN@host`` and ``http://:TOKEN@host`` all become
``http://***@host``) and ``key=value`` pairs and ``{key: value}`` items with a secret-looking
key (query strings, Hydra overrides) keep the key and lose the value. List items are values of
their list's key, never keys: ``- foreign secretary`` is a labelling term and stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Words that make a key secret wherever they appear in it ...
_SECRET_WORDS = {"password", "passwd", "pwd", "secret", "secrets", "passphrase", "credential"}
_SECRET_WORDS |= {"credentials", "apikey", "privatekey", "accesskey", "secretkey"}
# ... and words that do only at the end (``token_pattern`` is a vectorizer setting).
_SECRET_LAST = {"token", "tokens", "key"}  # "key" only after api/private/access/secret, below
_KEY_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")}


def _words(key: str) -> list[str]:
    key = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)  # accessToken -> access_Token
    return [w for w in re.split(r"[^a-z0-9]+", key.lower()) if w]


def is_secret_key(key: str) -> bool:
    """Whether a config key (or the last part of a dotted one) names a secret; a last part
    that is only ``key`` or ``token`` is read with the part before it, as Hadoop and Spark
    spell their settings (``fs.s3a.secret.key``, ``fs.azure.sas.token``)."""
    parts = str(key).split(".")
    words = _words(parts[-1])
    if len(parts) > 1 and words in (["key"], ["token"]):
        words = _words(parts[-2]) + words
    if not words:
        return False
    if any(w in _SECRET_WORDS or "password" in w or "passwd" in w for w in words):
        return True
    if any(w.startswith("auth") and not re.match("author(?!i[sz])", w) for w in words):
        return True  # auth, auth_header, authorization, authtoken; not author(s)
    if words[-1] in ("token", "tokens") or words[-1].endswith("token"):
        return True
    return len(words) > 1 and (words[-2], words[-1]) in _KEY_PAIRS


# scheme://userinfo@ ; the user information ends at the last "@" before the host, so a
# password holding "/" or "@" goes whole.
# Hydra prints a sweep's overrides with ":" escaped ("http\://user\:pw@host").
_URI_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*\\?://)[^\s'\"<>@]*(?:@[^\s'\"<>@/?#]*)*@"
)
_KEY_VALUE = re.compile(r"(?P<key>[A-Za-z_+~][\w.\-]*)=(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]*)")


def redact_text(text: str) -> str:
    """``text`` with URI user information and secret-keyed ``key=value`` values masked."""
    if "@" not in text and "=" not in text and "{" not in text:
        return text
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    if "{" in text:
        text = _mask_dict_items(text)
    return _mask_pairs(text)


# Hydra's dict syntax on the command line: +spark.conf={fs.s3a.secret.key:VALUE,...}
_DICT_ITEM = re.compile(
    r"(?P<lead>[{,]\s*)(?P<key>[A-Za-z_][\w.\-]*)(?P<sep>\s*:\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s,}'\"]*)"
)


def _mask_dict_items(text: str) -> str:
    def mask(m: re.Match) -> str:
        if not is_secret_key(m["key"]):
            return m[0]
        return f"{m['lead']}{m['key']}{m['sep']}{MASK}"

    return _DICT_ITEM.sub(mask, text)


def _mask_pairs(text: str) -> str:
    def mask(m: re.Match) -> str:
        if is_secret_key(m["key"].lstrip("+~")):
            return f"{m['key']}={MASK}"
        value = m["value"]  # a quoted value may hold pairs of its own (a query string)
        inner = _mask_pairs(value[1:-1]) if value[:1] in "'\"" and len(value) > 1 else value
        return f"{m['key']}={value[:1]}{inner}{value[-1:]}" if inner != value else m[0]

    return _KEY_VALUE.sub(mask, text)


def redact(key: str, value: Any) -> Any:
    """A config value fit to log: masked whole under a secret key, else its text redacted."""
    if is_secret_key(key):
        return MASK
    return redact_tree(value)


def redact_tree(value: Any) -> Any:
    """A copy of a config (dicts, lists, scalars) with every secret masked."""
    if isinstance(value, Mapping):
        return {k: redact(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]  # items are values, never keys
    if isinstance(value, str):
        return redact_text(value)
    return value
