"""What the engine accepts: batch and page sizes, text lengths, and the fixed vocabularies of objections and the outbox.

Kept apart from the modules that enforce them, and free of heavy imports, so
a shell can build its options and help from them without loading the engine.
"""

from __future__ import annotations

__all__ = [
    "ACCESS_ACTIONS",
    "DEFAULT_BATCH",
    "DEFAULT_MOVE_BATCH",
    "MAX_BATCH",
    "MAX_COMMENT",
    "MAX_PER_PAGE",
    "OBJECTION_CHANNELS",
    "OUTBOX_STATUS",
    "OUTCOMES",
]

#: cases per transaction in an import or a bulk step, by default and at most
DEFAULT_BATCH = 1000
MAX_BATCH = 10_000
#: cases moved to a new workflow version per transaction (``workflow migrate``), by default
DEFAULT_MOVE_BATCH = 500

#: the largest page of what waits for a user
MAX_PER_PAGE = 500

#: the longest comment, reason or objection text, in characters
MAX_COMMENT = 2000

#: how an objection (异议) reached the office: by phone, by letter, in person
OBJECTION_CHANNELS = ("电话", "来信", "来访")

#: how an objection is resolved
OUTCOMES = ("upheld", "dismissed")

#: the life of an outbox row
OUTBOX_STATUS = ("pending", "sending", "sent", "failed", "dead")

#: every kind of access-log entry, by who writes it: reads of full personal data (the console, the pages,
#: the API), changes to users, logins to the web pages, and the API's tokens and requests
ACCESS_ACTIONS = (
    "read_case",
    "list_cases",
    "search_cases",
    "export_cases",
    "inbox_cases",
    "add_user",
    "edit_user",
    "disable_user",
    "enable_user",
    "login",
    "login_failed",
    "logout",
    "change_password",
    "set_password",
    "create_token",
    "revoke_token",
    "api",
    "api_limited",
    "api_refused",
)
