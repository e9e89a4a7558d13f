"""Masking secrets wherever the starter shows settings: the actuator's ``/env`` and
``/configprops``, the ``redis-streaming`` command's output, settings errors and log lines.

One rule for names (:func:`is_secret_name`) and one for URLs (:func:`mask_url`), so every place
that shows a Redis URL masks the same things: the password of ``user:password@``, and the value
of every query parameter whose name looks secret (``?password=``, ``ssl_password=``, ``token=``,
...), which redis-py accepts as well. Host, port, path and the other parameters are kept as
written (IPv6 brackets and ``unix://`` paths included).
"""

from __future__ import annotations

import re

__all__ = ["MASK", "is_secret_name", "mask_text", "mask_url", "mask_urls", "shown_value"]

MASK = "******"

_SECRET = r"password|passwd|secret|token|key|credential"
_SECRET_NAME = re.compile(_SECRET, re.IGNORECASE)
# scheme://user:password@ - the user part has no ':', '/', '@', '?' or '#'; the password runs
# to the last '@' before the path, query or fragment.
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@?#\s]*:)[^/?#\s]*@", re.IGNORECASE)
# ?name=value or &name=value (or ;name=value) where the name looks secret.
_SECRET_PARAM = re.compile(rf"([?&;][^=&;#\s]*(?:{_SECRET})[^=&;#\s]*=)[^&;#\s]*", re.IGNORECASE)
# name=value in a list (a=1,b=2 as registry.metadata takes it), and "name": "value" of JSON.
_SECRET_PAIR = re.compile(
    rf"((?:^|[\s,;])[^=,;\s]*(?:{_SECRET})[^=,;\s]*=)[^,;\s]*"
    rf"|(\"[^\"]*(?:{_SECRET})[^\"]*\"\s*:\s*\")[^\"]*",
    re.IGNORECASE,
)
# A URL inside a longer text: a scheme, '://', then up to whitespace or a quote.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]*", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True when a setting, variable or parameter name looks secret: it contains password,
    passwd, secret, token, key or credential (any case)."""
    return _SECRET_NAME.search(name) is not None


def mask_url(url: str) -> str:
    """``url`` with its password and secret-looking query parameters replaced by ``******``.

    ``redis://app:pw@db:6379/0?ssl_password=x`` becomes
    ``redis://app:******@db:6379/0?ssl_password=******``; a URL without secrets is returned
    unchanged.
    """
    return _SECRET_PARAM.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", url, count=1))


def mask_urls(text: str) -> str:
    """``text`` with :func:`mask_url` applied to every URL in it (for values that are not
    only a URL, such as a list or an error message)."""
    return _URL.sub(lambda m: mask_url(m[0]), text)


def mask_text(text: str) -> str:
    """``text`` with :func:`mask_urls` applied, and the value of every secret-looking
    ``name=value`` pair (``region=eu,api_key=******``) and JSON ``"name": "value"`` masked: for
    raw values such as environment variables, whose meaning is not known."""
    return _SECRET_PAIR.sub(lambda m: f"{m[1] or m[2]}{MASK}", mask_urls(text))


def shown_value(name: str, value: object) -> str:
    """``repr(value)`` for an error message, or ``******`` when it may carry a secret: its name
    looks secret (:func:`is_secret_name`), or it is (or holds) a URL or ``name=value`` pair
    that :func:`mask_text` would mask."""
    if is_secret_name(name) or (isinstance(value, str) and mask_text(value) != value):
        return MASK
    return repr(value)
