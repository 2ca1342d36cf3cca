"""A signed HTTP POST of each event to one configured URL (standard library ``urllib``).

The request::

    POST <[webhook] url>
    Content-Type: application/json
    X-Casework-Key: <outbox key>            # the same on every re-send: deduplicate on it
    X-Casework-Timestamp: <unix seconds>    # when this attempt was made
    X-Casework-Signature: sha256=<hex>

    {"key": ..., "kind": "message", "case_ref": "ZZ-2026-000123", "subject": ..., "text": ...,
     "event": {"trigger": ..., "from_state": ..., "to_state": ..., "actor": ..., "at": ...},
     "case": {...}}                         # masked by the workflow's privacy policy

The body is UTF-8 JSON (Chinese characters not escaped).

**Verifying a request** (the receiver's side): with the shared secret,
compute ``HMAC-SHA256(key=secret as UTF-8, message=timestamp + "." + raw body
bytes)`` as lowercase hex, and compare it in constant time with the part of
``X-Casework-Signature`` after ``sha256=``. Sign the raw bytes received, not
re-serialised JSON. Then reject timestamps too far from your clock (e.g.
more than 5 minutes: replay) and ignore a key you have already processed
(the relay delivers at least once). :func:`verify_signature` does the first
two. In Python::

    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    ok = hmac.compare_digest("sha256=" + mac.hexdigest(), signature_header)

Answers: 2xx → delivered; 408, 429 and 5xx, timeouts and connection errors
→ retried; any other 4xx → permanent (the request itself is wrong).
Redirects are not followed (a POST body would be dropped): configure the
final URL.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection

from notifications.channels.base import Channel, Delivery, DeliveryError
from notifications.config import WebhookConfig

if TYPE_CHECKING:
    from typing import Self

    from notifications.config import NotificationConfig

__all__ = ["WebhookChannel", "payload", "sign", "verify_signature"]

logger = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
RETRYABLE_4XX = frozenset({408, 429})


def payload(delivery: Delivery) -> bytes:
    """The JSON body for ``delivery`` (UTF-8)."""
    body = {
        "key": delivery.key,
        "kind": delivery.kind,
        "case_ref": delivery.case_ref,
        "subject": delivery.subject,
        "text": delivery.text,
        "event": delivery.context.get("event"),
        "case": delivery.context.get("case"),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Casework-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` at ``timestamp`` (constant-time compare).

    Args:
        secret: the shared secret.
        timestamp: the ``X-Casework-Timestamp`` header as received.
        body: the raw request body as received.
        header: the ``X-Casework-Signature`` header as received.
        tolerance: if given, also refuse a timestamp more than this many
            seconds away from ``now`` (replay protection).
        now: the receiver's time in unix seconds (default: the wall clock).
    """
    try:
        expected = sign(secret, timestamp, body)
    except UnicodeEncodeError:
        return False
    if not hmac.compare_digest(expected.encode("ascii"), header.encode("utf-8", "replace")):
        return False
    if tolerance is not None:
        try:
            sent = int(timestamp)
        except ValueError:
            return False
        if abs((time.time() if now is None else now) - sent) > tolerance:
            return False
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Surface a 3xx as an error: following it would turn the POST into a GET without the body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookChannel(Channel):
    """POSTs each message as signed JSON to the ``[webhook]`` URL.

    Args:
        settings: URL, secret and timeout; without URL or secret every delivery
            fails permanently, saying what to configure.
        clock: unix seconds for ``X-Casework-Timestamp`` (default: the wall
            clock, which is what receivers check freshness against).
    """

    name: ClassVar[str] = "webhook"

    def __init__(self, settings: WebhookConfig, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._opener = urllib.request.build_opener(_NoRedirect)

    @classmethod
    def from_config(cls, config: NotificationConfig) -> Self:
        return cls(config.webhook)

    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        s = self.settings
        missing = s.missing()
        if missing:
            raise DeliveryError(missing, permanent=True)
        assert s.url is not None and s.secret is not None
        body = payload(delivery)
        timestamp = str(int(self.clock()))
        request = urllib.request.Request(
            s.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "casework-relay",
                "X-Casework-Key": delivery.key,
                "X-Casework-Timestamp": timestamp,
                "X-Casework-Signature": sign(s.secret, timestamp, body),
            },
        )
        try:
            with self._opener.open(request, timeout=s.timeout) as response:
                response.read(64 * 1024)  # drain a little so the connection closes cleanly
        except urllib.error.HTTPError as exc:
            code = exc.code
            reason = " ".join(str(exc.reason).split())[:200]
            exc.close()  # it holds the open response
            permanent = code < 500 and code not in RETRYABLE_4XX
            hint = " (redirects are not followed: configure the final URL)" if 300 <= code <= 399 else ""
            raise DeliveryError(f"webhook answered {code} {reason}{hint}", permanent=permanent) from None
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, str) else f"{type(exc.reason).__name__}: {exc.reason}"
            raise DeliveryError(f"cannot reach webhook: {reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            # timeouts, resets, malformed answers: the endpoint may be fine later
            raise DeliveryError(f"webhook request failed: {type(exc).__name__}: {exc}") from None
