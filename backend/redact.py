"""One redactor for every text that comes from fal or a visitor before it is shown or logged.

    redact(text, server_key, visitor_key)   # -> the text with each secret masked

It masks, in this order: the secrets given (exact strings, also each half of an
`id:secret` key and their URL-encoded forms), the secrets in use by a run
(`secrets_in_use`) and the server's key (`register_secret`), then anything after
`Key ` or `Bearer ` (an Authorization header echoed back), then anything shaped
like a fal key (`<uuid>:<32+ hex>`, and long `id:secret` tokens).

`RedactingFilter` is the same for log records: app.py installs it on the root
logger's handlers, so nothing any library logs carries a key.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

MASK = "****"
# A secret shorter than this is no real key, and masking it would garble ordinary words.
MIN_SECRET = 6
MIN_PART = 8  # each half of an id:secret key, masked on its own

# "Key <anything>" / "Bearer <anything>": fal's and its CDN's Authorization schemes.
_SCHEME = re.compile(r"(?<![A-Za-z0-9_-])(Key|Bearer|bearer)([ \t]+|%20|\+)([A-Za-z0-9._~+/=:%-]+)")
# A fal key: "<uuid>:<hex secret>"; any long id:secret token looks like one too.
_FAL_KEY = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?::|%3A)[0-9A-Fa-f]{32,}")
_ID_SECRET = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9][A-Za-z0-9_-]{11,}(?::|%3A)[A-Za-z0-9_-]{24,}")

_lock = threading.Lock()
_in_use: Counter[str] = Counter()


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret given, every registered secret, `Key …`/`Bearer …` tokens
    and anything shaped like a fal key masked as `****` (`Key ****`)."""
    if not isinstance(text, str):
        text = str(text)
    for secret in _spellings([*secrets, *known_secrets()]):
        text = text.replace(secret, MASK)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _FAL_KEY.sub(MASK, text)
    return _ID_SECRET.sub(MASK, text)


def _spellings(secrets: Iterable[str | None]) -> list[str]:
    """Each secret as it may appear: whole, URL-encoded, and each half of id:secret;
    longest first, so that a whole key is masked before its halves."""
    found: set[str] = set()
    for secret in secrets:
        secret = (secret or "").strip()
        if len(secret) < MIN_SECRET:
            continue
        found.update({secret, quote(secret, safe="")})
        if ":" in secret:
            found.update(part for part in secret.split(":", 1) if len(part) >= MIN_PART)
    return sorted(found, key=len, reverse=True)


def register_secret(secret: str | None) -> None:
    """Mask `secret` in every text from now on (the server's key, at start-up)."""
    if secret and len(secret.strip()) >= MIN_SECRET:
        with _lock:
            _in_use[secret.strip()] += 1


def forget_secret(secret: str | None) -> None:
    if secret:
        with _lock:
            _in_use[secret.strip()] -= 1
            if _in_use[secret.strip()] <= 0:
                del _in_use[secret.strip()]


@contextmanager
def secrets_in_use(*secrets: str | None) -> Iterator[None]:
    """Mask these secrets (a visitor's key) in every text, logs included, while a run uses them."""
    kept = [s for s in secrets if s and len(s.strip()) >= MIN_SECRET]
    for secret in kept:
        register_secret(secret)
    try:
        yield
    finally:
        for secret in kept:
            forget_secret(secret)


def known_secrets() -> list[str]:
    with _lock:
        return list(_in_use)


class RedactingFilter(logging.Filter):
    """Redacts every record a handler writes: its message (after formatting its arguments),
    its traceback and its stack. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its message: leave it to logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Put one `RedactingFilter` on each handler of `logger` (the root logger by default)."""
    redacting = RedactingFilter()
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting
