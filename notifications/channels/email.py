"""Email over SMTP (standard library ``smtplib``), one message per connection.

The message is plain text with an HTML alternative when the template has
one; the subject and a Chinese display name in From are encoded by the
:mod:`email` package (RFC 2047), the bodies as base64 or quoted-printable, so
the message is 7-bit clean for any server. ``Message-ID`` is derived from the
outbox key, so a message sent again after a crash carries the same
Message-ID (and is byte-for-byte the same) and mail clients show it once.

Failures: cannot connect, a timeout or a 4xx reply → retried; a 5xx reply
(recipient refused, message rejected, login refused) → permanent.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import Connection

from notifications.channels.base import Channel, Delivery, DeliveryError
from notifications.config import SmtpConfig

if TYPE_CHECKING:
    from typing import Self

    from notifications.config import NotificationConfig

__all__ = ["EmailChannel", "build_message", "message_id"]

logger = logging.getLogger(__name__)

# 7-bit transfer encodings: no reliance on the server's 8BITMIME
_POLICY = SMTP.clone(cte_type="7bit")


def message_id(key: str, sender: str) -> str:
    """The Message-ID for the outbox ``key``: the same key always gives the same id.

    The key is hashed, so the header reveals nothing of the case or recipient.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "casework.invalid"
    return f"<{_digest(key)[:32]}.casework@{domain}>"


def build_message(delivery: Delivery, sender: str) -> EmailMessage:
    """The email for ``delivery``, from ``sender`` (e.g. ``漳州市总工会 <noreply@zzgh.example>``).

    Raises:
        DeliveryError: permanent, when the recipient is not an email address.
    """
    try:
        to = Address(addr_spec=delivery.recipient)
    except (ValueError, IndexError, TypeError):
        raise DeliveryError("the recipient is not a valid email address", permanent=True) from None
    if not to.domain:
        raise DeliveryError("the recipient is not a valid email address", permanent=True)
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = delivery.subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(delivery.created_at)
    msg["Message-ID"] = message_id(delivery.key, sender)
    # RFC 3834: an automatic message; well-behaved servers send no vacation replies to it
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(delivery.text)
    if delivery.html is not None:
        msg.add_alternative(delivery.html, subtype="html")
        # derived from the key too, so a re-send is byte-for-byte the same message;
        # "==" never occurs in base64 or quoted-printable bodies, so it cannot clash
        msg.set_boundary(f"==casework.{_digest(delivery.key)[32:56]}==")
    return msg


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class EmailChannel(Channel):
    """Sends each message by SMTP with the ``[smtp]`` settings.

    Args:
        settings: the SMTP settings; without a host or sender every delivery
            fails permanently, saying what to configure.
    """

    name: ClassVar[str] = "email"

    def __init__(self, settings: SmtpConfig) -> None:
        self.settings = settings

    @classmethod
    def from_config(cls, config: NotificationConfig) -> Self:
        return cls(config.smtp)

    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        s = self.settings
        missing = s.missing()
        if missing:
            raise DeliveryError(missing, permanent=True)
        assert s.host is not None and s.sender is not None
        msg = build_message(delivery, s.sender)
        where = f"{s.host}:{s.effective_port}"
        try:
            if s.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.effective_port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout)
            with client:
                if s.starttls:
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password or "")
                client.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            # one recipient per message, so "all refused" is "ours refused"
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            raise DeliveryError(
                f"SMTP server {where} refused the recipient: {code} {_text(reply)}", permanent=_permanent(code)
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            hint = "check [smtp] starttls and username"
            raise DeliveryError(f"SMTP server {where}: {exc} ({hint})", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            what = type(exc).__name__.removeprefix("SMTP")
            raise DeliveryError(
                f"SMTP server {where} answered {exc.smtp_code} {_text(exc.smtp_error)} ({what})",
                permanent=_permanent(exc.smtp_code),
            ) from None
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"SMTP with {where} failed: {type(exc).__name__}: {exc}") from None
        except OSError as exc:
            # refused connection, DNS failure, timeout, TLS failure: the server may be back later
            raise DeliveryError(f"cannot reach SMTP server {where}: {type(exc).__name__}: {exc}") from None


def _permanent(code: int) -> bool:
    return 500 <= code <= 599


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]
