"""Which settings values are secret: one rule for ``/actuator/env`` and the settings errors.

A name (a variable, a dotted setting, a map key) that contains password, secret, token, key or
credential looks secret, and its value is never shown.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MASK", "SECRET_NAME", "looks_secret", "shown_value"]

MASK = "******"
SECRET_NAME = re.compile(r"password|secret|token|key|credential", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """Whether a value named ``name`` is a secret (and is always masked)."""
    return SECRET_NAME.search(name) is not None


def shown_value(name: str, value: object) -> str:
    """``repr(value)`` for an error message, or ``******`` when it may carry a secret: its name
    looks secret, or it is a URL with a password (``redis://:pw@host``, ``?password=pw``)."""
    if looks_secret(name) or (isinstance(value, str) and _url_with_password(value)):
        return MASK
    return repr(value)


_URL = re.compile(r"(?i)[a-z][a-z0-9+.-]*://[^\s\"',]+")


def _url_with_password(text: str) -> bool:
    """Whether ``text`` holds a URL with a password, also inside JSON (a section variable)."""
    for url in _URL.findall(text):
        try:
            parts = urlsplit(url)
            if parts.password is not None:
                return True
        except ValueError:  # an invalid port or address: be safe
            return True
        if any(looks_secret(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            return True
    return False
