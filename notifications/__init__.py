"""Notifications: delivering the outbox the engine writes (inbox, email, webhook) and reading the inbox.

Start here: :class:`Relay` delivers due outbox rows through the channels of
:func:`default_channels`, configured by :func:`load_config`;
:func:`list_outbox` and :func:`retry` are for operators; :func:`inbox` and
:func:`mark_read` for users. A new channel is a :class:`Channel` subclass
(see :mod:`notifications.channels`).
"""

from __future__ import annotations

from notifications.channels import (
    CHANNELS,
    Channel,
    ConsoleChannel,
    Delivery,
    DeliveryError,
    EmailChannel,
    InboxChannel,
    WebhookChannel,
    default_channels,
    verify_signature,
)
from notifications.config import NotificationConfig, RelayConfig, SmtpConfig, WebhookConfig, load_config

# ``notifications.inbox`` is the function from here on; the module of the same
# name is still importable by name: ``from notifications.inbox import InboxView``
from notifications.inbox import InboxView, inbox, mark_read, unread_count
from notifications.relay import (
    NotRetryable,
    OutboxView,
    Relay,
    RelayReport,
    backoff_delay,
    list_outbox,
    retry,
)

__all__ = [
    "CHANNELS",
    "Channel",
    "ConsoleChannel",
    "Delivery",
    "DeliveryError",
    "EmailChannel",
    "InboxChannel",
    "InboxView",
    "NotRetryable",
    "NotificationConfig",
    "OutboxView",
    "Relay",
    "RelayConfig",
    "RelayReport",
    "SmtpConfig",
    "WebhookChannel",
    "WebhookConfig",
    "backoff_delay",
    "default_channels",
    "inbox",
    "list_outbox",
    "load_config",
    "mark_read",
    "retry",
    "unread_count",
    "verify_signature",
]
