"""Settings for delivering notifications: SMTP, the webhook, and the relay's retry policy.

They come from a TOML file, then from the environment, which wins::

    # casework.toml
    [smtp]
    host = "smtp.zzgh.example"
    port = 587                      # default: 465 with ssl, 587 with starttls, else 25
    sender = "漳州市总工会 <noreply@zzgh.example>"
    username = "noreply"            # optional; log in only when given
    password = "..."
    starttls = true
    ssl = false
    timeout = 30                    # seconds

    [webhook]
    url = "https://hooks.zzgh.example/casework"
    secret = "..."                  # HMAC key, see notifications.channels.webhook
    timeout = 10

    [relay]
    max_attempts = 8                # then the message is dead
    base_delay = 30                 # seconds before the first retry, doubled each time
    max_delay = 3600                # ... up to this
    lease = 120                     # seconds a claimed message is ours
    batch = 100                     # messages claimed at once

The file is ``path`` if given, else ``$CASEWORK_CONFIG``, else
``./casework.toml`` if it exists, else none (defaults only). Every key has an
environment variable ``CASEWORK_<SECTION>_<KEY>`` (upper case; the SMTP user
name is ``CASEWORK_SMTP_USER``), e.g. ``CASEWORK_SMTP_HOST``,
``CASEWORK_WEBHOOK_SECRET``, ``CASEWORK_RELAY_MAX_ATTEMPTS``. Secrets are best
given that way, not written in a file.

A value that cannot be used raises :class:`engine.InputError` naming the key.
Missing SMTP or webhook settings are *not* an error here: the channel stays
registered and each message for it fails permanently, saying what to set.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import InputError
from engine.suggest import did_you_mean

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "NotificationConfig",
    "RelayConfig",
    "SmtpConfig",
    "WebhookConfig",
    "load_config",
]

logger = logging.getLogger(__name__)

CONFIG_ENV = "CASEWORK_CONFIG"
DEFAULT_CONFIG_FILE = "casework.toml"


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the mail server. ``host`` unset means email is not configured."""

    host: str | None = None
    port: int | None = None
    sender: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0

    @property
    def effective_port(self) -> int:
        """``port``, else the standard one for the connection mode."""
        if self.port is not None:
            return self.port
        return 465 if self.ssl else 587 if self.starttls else 25

    def missing(self) -> str | None:
        """Why email cannot be sent with these settings, or None when it can."""
        if not self.host:
            return "email is not configured: set CASEWORK_SMTP_HOST or [smtp] host in casework.toml"
        if not self.sender:
            return "email is not configured: set CASEWORK_SMTP_SENDER or [smtp] sender in casework.toml"
        return None


@dataclass(frozen=True)
class WebhookConfig:
    """Where to POST events and the key to sign them with. Both needed to send."""

    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0

    def missing(self) -> str | None:
        """Why the webhook cannot be called with these settings, or None when it can."""
        if not self.url:
            return "webhook is not configured: set CASEWORK_WEBHOOK_URL or [webhook] url in casework.toml"
        if not self.secret:
            return "webhook is not configured: set CASEWORK_WEBHOOK_SECRET or [webhook] secret in casework.toml"
        return None


@dataclass(frozen=True)
class RelayConfig:
    """Retry policy and batching of the relay; durations in seconds."""

    max_attempts: int = 8
    base_delay: float = 30.0
    max_delay: float = 3600.0
    lease: float = 120.0
    batch: int = 100


@dataclass(frozen=True)
class NotificationConfig:
    """Everything the notifications layer reads from ``casework.toml`` and the environment."""

    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    relay: RelayConfig = field(default_factory=RelayConfig)


# ---------------------------------------------------------------- parsing values

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _text(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        raise InputError(f"{key} must be text, not {value!r}")
    return value.strip() or None


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InputError(f"{key} must be true or false, not {value!r}")


def _int(key: str, value: Any, low: int, high: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None or not low <= number <= high:
        raise InputError(f"{key} must be a whole number from {low} to {high}, not {value!r}")
    return number


def _seconds(key: str, value: Any) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    # NaN fails both comparisons, so it is refused too
    if number is None or not 0 < number <= 7 * 24 * 3600:
        raise InputError(f"{key} must be a number of seconds greater than 0 (at most a week), not {value!r}")
    return number


def _port(key: str, value: Any) -> int:
    return _int(key, value, 1, 65535)


def _sender(key: str, value: Any) -> str | None:
    text = _text(key, value)
    if text is not None and "@" not in parseaddr(text)[1]:
        raise InputError(f"{key} must be an address such as '漳州市总工会 <noreply@zzgh.example>', not {text!r}")
    return text


def _url(key: str, value: Any) -> str | None:
    text = _text(key, value)
    if text is not None:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"{key} must be an http:// or https:// URL, not {text!r}")
    return text


# section → {key: (parser, environment variable)}
Parser = Callable[[str, Any], Any]
_KEYS: dict[str, dict[str, tuple[Parser, str]]] = {
    "smtp": {
        "host": (_text, "CASEWORK_SMTP_HOST"),
        "port": (_port, "CASEWORK_SMTP_PORT"),
        "sender": (_sender, "CASEWORK_SMTP_SENDER"),
        "username": (_text, "CASEWORK_SMTP_USER"),
        "password": (_text, "CASEWORK_SMTP_PASSWORD"),
        "starttls": (_bool, "CASEWORK_SMTP_STARTTLS"),
        "ssl": (_bool, "CASEWORK_SMTP_SSL"),
        "timeout": (_seconds, "CASEWORK_SMTP_TIMEOUT"),
    },
    "webhook": {
        "url": (_url, "CASEWORK_WEBHOOK_URL"),
        "secret": (_text, "CASEWORK_WEBHOOK_SECRET"),
        "timeout": (_seconds, "CASEWORK_WEBHOOK_TIMEOUT"),
    },
    "relay": {
        "max_attempts": (lambda k, v: _int(k, v, 1, 1000), "CASEWORK_RELAY_MAX_ATTEMPTS"),
        "base_delay": (_seconds, "CASEWORK_RELAY_BASE_DELAY"),
        "max_delay": (_seconds, "CASEWORK_RELAY_MAX_DELAY"),
        "lease": (_seconds, "CASEWORK_RELAY_LEASE"),
        "batch": (lambda k, v: _int(k, v, 1, 10_000), "CASEWORK_RELAY_BATCH"),
    },
}


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ) -> NotificationConfig:
    """Read the settings: the TOML file, then environment variables over it.

    Args:
        path: the TOML file; default ``$CASEWORK_CONFIG``, else ``./casework.toml`` if present.
        env: the environment to read ``CASEWORK_*`` variables from.

    Raises:
        InputError: the file is missing (when named) or unreadable, or a value is unusable.
    """
    where, table = _read_file(path, env)
    values: dict[str, dict[str, Any]] = {section: {} for section in _KEYS}
    for section, content in table.items():
        if section not in _KEYS:
            raise InputError(f"{where}: unknown section [{section}]{did_you_mean(section, _KEYS)}")
        if not isinstance(content, dict):
            raise InputError(f"{where}: {section} must be a section ([{section}]), not a value")
        for key, value in content.items():
            if key not in _KEYS[section]:
                raise InputError(f"{where}: unknown key {key!r} in [{section}]{did_you_mean(key, _KEYS[section])}")
            parser, _ = _KEYS[section][key]
            values[section][key] = parser(f"{where}: [{section}] {key}", value)
    for section, keys in _KEYS.items():
        for key, (parser, variable) in keys.items():
            raw = env.get(variable)
            if raw is not None and raw.strip() != "":
                values[section][key] = parser(variable, raw)
    config = NotificationConfig(
        smtp=replace(SmtpConfig(), **values["smtp"]),
        webhook=replace(WebhookConfig(), **values["webhook"]),
        relay=replace(RelayConfig(), **values["relay"]),
    )
    _check(config)
    return config


def _read_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """(name to report, parsed table) of the config file, or ("", {}) when there is none."""
    origin = ""
    if path is None and env.get(CONFIG_ENV):
        path, origin = env[CONFIG_ENV], f" (from ${CONFIG_ENV})"
    elif path is None:
        if not Path(DEFAULT_CONFIG_FILE).is_file():
            return "", {}
        path = DEFAULT_CONFIG_FILE
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no configuration file {str(file)!r}{origin}") from None
    except OSError as exc:
        raise InputError(f"cannot read configuration file {str(file)!r}: {exc.strerror}") from None
    try:
        return str(file), tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{file}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{file}: not valid TOML: {exc}") from None


def _check(config: NotificationConfig) -> None:
    """Combinations no single value shows."""
    if config.smtp.ssl and config.smtp.starttls:
        raise InputError("smtp ssl and starttls are exclusive: ssl is TLS from the start (port 465), starttls upgrades")
    if config.smtp.password and not config.smtp.username:
        raise InputError("smtp password is set but username is not: set CASEWORK_SMTP_USER or [smtp] username")
    if config.relay.max_delay < config.relay.base_delay:
        raise InputError(
            f"relay max_delay ({config.relay.max_delay:g} s) must not be less than base_delay "
            f"({config.relay.base_delay:g} s)"
        )
