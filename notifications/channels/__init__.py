"""Ways of delivering messages, and the registry the relay uses.

Adding a channel is one module here (a :class:`Channel` subclass, see
:mod:`notifications.channels.base`) and one line in :data:`CHANNELS`.
"""

from __future__ import annotations

from notifications.channels.base import Channel, Delivery, DeliveryError
from notifications.channels.console import ConsoleChannel
from notifications.channels.email import EmailChannel
from notifications.channels.inbox import InboxChannel
from notifications.channels.webhook import WebhookChannel, verify_signature
from notifications.config import NotificationConfig

__all__ = [
    "CHANNELS",
    "Channel",
    "ConsoleChannel",
    "Delivery",
    "DeliveryError",
    "EmailChannel",
    "InboxChannel",
    "WebhookChannel",
    "default_channels",
    "verify_signature",
]

# The registry: every channel a workflow's notify rule may name.
CHANNELS: tuple[type[Channel], ...] = (
    InboxChannel,
    EmailChannel,
    WebhookChannel,
    ConsoleChannel,
)


def default_channels(config: NotificationConfig) -> dict[str, Channel]:
    """One instance of every registered channel, by name, built from ``config``.

    Channels whose settings are missing are included: their deliveries fail
    permanently with a message saying what to configure.
    """
    return {cls.name: cls.from_config(config) for cls in CHANNELS}
