"""The tables of casework, declared once, in SQLAlchemy Core.

The engine reads and writes these ``Table`` objects directly (no unit of
work, one round trip per statement); the Alembic migrations reproduce them
(``tests/integration/test_migrations.py`` checks that the migrated schema
and this metadata agree). Core only: importing the ORM costs more start-up
time than most commands take to run, and nothing in the engine needs it
(:mod:`db.models` maps ORM classes onto these tables for tests and scripts).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from db.types import JSONType, UTCDateTime

__all__ = [
    "access_log",
    "api_tokens",
    "audit_events",
    "campaigns",
    "case_keys",
    "cases",
    "idempotency_keys",
    "inbox_messages",
    "job_runs",
    "limit_counts",
    "login_failures",
    "metadata",
    "notice_cases",
    "notices",
    "objections",
    "outbox",
    "ref_counters",
    "timers",
    "users",
    "web_sessions",
    "workflow_versions",
]

metadata = MetaData()


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _required(name: str, type_: object, *args: object, **kw: object) -> Column[object]:
    return Column(name, type_, *args, nullable=False, **kw)  # type: ignore[arg-type]


def _optional(name: str, type_: object, *args: object, **kw: object) -> Column[object]:
    return Column(name, type_, *args, nullable=True, **kw)  # type: ignore[arg-type]


#: an immutable, loaded version of a workflow: its exact source and hash
workflow_versions = Table(
    "workflow_versions",
    metadata,
    _id(),
    _required("name", String(63)),
    _required("version", Integer),
    _required("title", String(200)),
    _required("source", Text),
    _required("source_hash", String(64)),
    _required("templates", JSONType),
    _required("loaded_at", UTCDateTime),
    # who loaded it ("os_user@host" for the CLI) and the weakened controls they accepted
    _optional("loaded_by", String(200)),
    _optional("weakened", JSONType),
    UniqueConstraint("name", "version", name="uq_workflow_versions_name_version"),
)

#: someone who acts on cases, with roles and the scopes (counties) they cover
users = Table(
    "users",
    metadata,
    _id(),
    _required("username", String(63), unique=True),
    _required("name", String(200)),
    _optional("email", String(254)),
    _required("roles", JSONType),
    _required("scopes", JSONType),
    _required("created_at", UTCDateTime),
    # a disabled user cannot act (and is kept: the trail names them)
    _optional("disabled_at", UTCDateTime),
    # an Argon2id hash (None: the user cannot log in to the web application)
    _optional("password_hash", String(200)),
    _optional("password_set_at", UTCDateTime),
)

#: one case (an archive), pinned to the workflow version it started on. ``version`` is the
#: optimistic-lock counter (every change is ``UPDATE ... WHERE version = :seen``);
#: ``audit_seq``/``audit_head`` mirror the last audit event, so deleting the newest event is
#: detectable; ``fired_by`` maps each trigger to everyone who fired it (four-eyes)
cases = Table(
    "cases",
    metadata,
    _id(),
    _required("ref", String(40), unique=True),
    _required("workflow", String(63)),
    _required("workflow_version_id", Integer, ForeignKey("workflow_versions.id")),
    _required("state", String(63)),
    _optional("scope", String(200)),
    _required("data", JSONType),
    _required("fired_by", JSONType),
    _required("version", Integer),
    _required("audit_seq", Integer),
    _required("audit_head", String(64)),
    _optional("entered_at", UTCDateTime),
    _optional("deadline_at", UTCDateTime),
    _required("deadline_provisional", Boolean, default=False),
    _optional("paused_at", UTCDateTime),
    _optional("paused_left", JSONType),
    _required("created_by", String(63)),
    _required("created_at", UTCDateTime),
    _required("updated_at", UTCDateTime),
    # HMAC of (ref, audit_seq, audit_head) under the audit key, which the database does not hold
    _optional("audit_seal", String(64)),
    Index("ix_cases_workflow_state", "workflow", "state"),
    Index("ix_cases_scope_state", "scope", "state"),
    Index("ix_cases_deadline", "deadline_at"),
    # the inbox (engine.store.inbox): one range per (version, state[, scope]), in deadline order; ``ref``
    # last, so a search for part of a reference is answered from the index without reading each row
    Index("ix_cases_inbox", "workflow_version_id", "state", "paused_at", "deadline_at", "id", "ref"),
    Index("ix_cases_inbox_scope", "workflow_version_id", "state", "scope", "paused_at", "deadline_at", "id", "ref"),
)

#: claims a unique field value (e.g. an ID number) for one case: the unique constraint, not a prior
#: SELECT, is what makes "a household is filed once" hold under concurrent creation
case_keys = Table(
    "case_keys",
    metadata,
    _id(),
    _required("workflow", String(63)),
    _required("field", String(63)),
    _required("value", String(200)),
    _required("case_id", Integer, ForeignKey("cases.id"), index=True),
    UniqueConstraint("workflow", "field", "value", name="uq_case_keys_value"),
)

#: what one case counts toward one of its workflow's limits across cases (``limits:``): written in the
#: transaction of the limit's step, replaced when the step is fired again on the case. ``key_hash`` is
#: the SHA-256 of the key field's value (an ID number is personal data: it is not copied here);
#: ``period`` the calendar year the step was fired in ("2026"), or "all"; ``amount`` the decimal text
#: counted ("1" for a count). A case counts only while it is in one of the limit's states
limit_counts = Table(
    "limit_counts",
    metadata,
    _id(),
    _required("workflow", String(63)),
    _required("limit_name", String(63)),
    _required("case_id", Integer, ForeignKey("cases.id")),
    _required("key_hash", String(64)),
    _required("period", String(10)),
    _required("amount", String(40)),
    # the audit event of the step that counted it (``casework check`` matches the two)
    _required("event_seq", Integer),
    _required("counted_at", UTCDateTime),
    UniqueConstraint("workflow", "limit_name", "case_id", name="uq_limit_counts_case"),
    Index("ix_limit_counts_key", "workflow", "limit_name", "key_hash", "period"),
)

#: one append-only, hash-chained event in a case's history
audit_events = Table(
    "audit_events",
    metadata,
    _id(),
    _required("case_id", Integer, ForeignKey("cases.id")),
    _required("seq", Integer),
    _required("at", UTCDateTime),
    _required("actor", String(63)),
    _optional("role", String(63)),
    _required("action", String(40)),
    _optional("trigger", String(63)),
    _optional("from_state", String(63)),
    _optional("to_state", String(63)),
    _optional("comment", Text),
    _required("changes", JSONType),
    _required("prev_hash", String(64)),
    _required("hash", String(64)),
    # where the event was written from (OS user, host) and, first events, the workflow version; hashed
    _optional("context", JSONType),
    UniqueConstraint("case_id", "seq", name="uq_audit_events_case_seq"),
)

#: the last number handed out per reference prefix and year
ref_counters = Table(
    "ref_counters",
    metadata,
    Column("prefix", String(10), primary_key=True),
    Column("year", Integer, primary_key=True),
    _required("last", Integer),
)

#: something to deliver, written in the same transaction as the change that caused it. ``key`` is
#: the idempotency key (one row per event, rule, channel and recipient). ``status``: pending →
#: sending (claimed, ``lease_until``) → sent; or failed (retried at ``next_attempt_at``) → dead.
#: ``kind``: ``message`` (from a template, for a person or endpoint) or ``notice`` (to generate)
outbox = Table(
    "outbox",
    metadata,
    _id(),
    _required("key", String(200), unique=True),
    _required("kind", String(20)),
    _optional("case_id", Integer, ForeignKey("cases.id")),
    _optional("event_seq", Integer),
    _required("workflow_version_id", Integer, ForeignKey("workflow_versions.id")),
    _required("channel", String(40)),
    _required("recipient", String(200)),
    _required("template", String(63)),
    _required("context", JSONType),
    _required("status", String(10)),
    _required("attempts", Integer),
    _required("next_attempt_at", UTCDateTime),
    _optional("lease_until", UTCDateTime),
    _optional("last_error", Text),
    _required("created_at", UTCDateTime),
    _optional("sent_at", UTCDateTime),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

#: an in-app message; ``outbox_id`` is unique, so a delivery lands exactly once
inbox_messages = Table(
    "inbox_messages",
    metadata,
    _id(),
    _required("outbox_id", Integer, ForeignKey("outbox.id"), unique=True),
    _required("username", String(63)),
    _optional("case_ref", String(40)),
    _required("subject", String(300)),
    _required("body", Text),
    _required("created_at", UTCDateTime),
    _optional("read_at", UTCDateTime),
    Index("ix_inbox_user", "username", "read_at"),
)

#: a generated public notice (公示): its exact HTML and SHA-256. ``kind``: ``case`` (one case
#: entering publicity) or ``list`` (a 公示名单 of one scope); ``key`` makes generation idempotent
notices = Table(
    "notices",
    metadata,
    _id(),
    _required("key", String(200), unique=True),
    _required("number", String(60), unique=True),
    _required("kind", String(10)),
    _required("workflow", String(63)),
    _optional("scope", String(200)),
    _required("title", String(300)),
    _required("html", Text),
    _required("sha256", String(64)),
    _required("context", JSONType),
    _optional("period_start", Date),
    _optional("period_end", Date),
    _required("created_at", UTCDateTime),
)

#: which cases a notice lists, in order
notice_cases = Table(
    "notice_cases",
    metadata,
    _id(),
    _required("notice_id", Integer, ForeignKey("notices.id"), index=True),
    _required("case_id", Integer, ForeignKey("cases.id")),
    _required("kind", String(10)),
    _required("position", Integer),
    UniqueConstraint("notice_id", "case_id", name="uq_notice_cases_notice_case"),
)

#: an objection (异议) raised during publicity; open ones hold the end of publicity
objections = Table(
    "objections",
    metadata,
    _id(),
    _required("case_id", Integer, ForeignKey("cases.id")),
    _required("channel", String(20)),
    _required("text", Text),
    _required("received_by", String(63)),
    _required("received_at", UTCDateTime),
    _required("status", String(10)),
    _optional("resolved_by", String(63)),
    _optional("resolved_at", UTCDateTime),
    _optional("comment", Text),
    Index("ix_objections_case_status", "case_id", "status"),
)

#: a durable timer (a reminder, an escalation or an automatic step) due at ``due_at``; written with
#: the state change that starts it, cancelled when the case leaves ``state``, fired once by a sweep;
#: ``held_at`` records that a guard held an automatic step (reported once, retried on later sweeps)
timers = Table(
    "timers",
    metadata,
    _id(),
    _required("case_id", Integer, ForeignKey("cases.id")),
    _required("kind", String(20)),
    _required("state", String(63)),
    _required("entered_at", UTCDateTime),
    _required("due_at", UTCDateTime),
    _required("provisional", Boolean),
    _required("payload", JSONType),
    _required("status", String(12)),
    _optional("held_at", UTCDateTime),
    _optional("fired_at", UTCDateTime),
    _optional("last_error", Text),
    _required("created_at", UTCDateTime),
    Index("ix_timers_due", "status", "due_at"),
    Index("ix_timers_case", "case_id", "status"),
)

#: one run of a scheduled job for one due time: the unique (job, fire_time) row makes a cron job
#: run once per due time however many scheduler processes see it due
job_runs = Table(
    "job_runs",
    metadata,
    _id(),
    _required("job", String(130)),
    _required("fire_time", UTCDateTime),
    _required("ran_at", UTCDateTime),
    _required("outcome", String(200)),
    UniqueConstraint("job", "fire_time", name="uq_job_runs_job_fire_time"),
)

#: a workflow's yearly campaign (``campaign:``) on the date a supervisor set for that year: who set it and
#: when, and, once it ran (exactly once: the row is claimed pending → ran in the run's transaction), when
#: and what it opened; a campaign cancelled before it ran keeps who cancelled it
campaigns = Table(
    "campaigns",
    metadata,
    _id(),
    _required("workflow", String(63)),
    _required("year", Integer),  # the programme year: 送温暖 of 2027 may run in December 2026
    _required("on_date", Date),
    _required("status", String(20)),  # pending | ran | cancelled
    _required("set_by", String(63)),
    _required("set_at", UTCDateTime),
    _optional("cancelled_by", String(63)),
    _optional("cancelled_at", UTCDateTime),
    _optional("ran_at", UTCDateTime),
    _optional("opened", Integer),
    _optional("skipped", Integer),
    _optional("outcome", String(200)),
    UniqueConstraint("workflow", "year", name="uq_campaigns_workflow_year"),
)

#: who read full personal data through the operator's console, and what
#: a login to the web application: the SHA-256 of the cookie's random token (the token itself
#: is never stored), the form token (CSRF) of the session, and when it ends (whichever comes
#: first: ``expires_at``, ``idle`` after ``seen_at``, logout, a disabled user)
web_sessions = Table(
    "web_sessions",
    metadata,
    _id(),
    _required("token_hash", String(64), unique=True),
    _required("username", String(63)),
    _required("csrf", String(64)),
    _required("client", String(64)),
    _required("created_at", UTCDateTime),
    _required("seen_at", UTCDateTime),
    _required("expires_at", UTCDateTime),
    _optional("ended_at", UTCDateTime),
    _optional("ended_why", String(20)),
    Index("ix_web_sessions_user", "username", "ended_at"),
)

#: a failed login, kept for the lockout window: by username and by client address
login_failures = Table(
    "login_failures",
    metadata,
    _id(),
    _required("username", String(63)),
    _required("client", String(64)),
    _required("at", UTCDateTime),
    Index("ix_login_failures_user", "username", "at"),
    Index("ix_login_failures_client", "client", "at"),
)

#: a token of the HTTP API: acts as its user (with at most the user's roles and scopes); stored only
#: as the SHA-256 of the secret; ``window_*`` count its requests for the rate limit across workers
api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    _required("token_hash", String(64), unique=True),
    _required("username", String(63)),
    _required("name", String(63)),
    _optional("roles", JSONType),
    _optional("scopes", JSONType),
    _required("created_at", UTCDateTime),
    _optional("created_by", String(63)),
    _optional("expires_at", UTCDateTime),
    _optional("revoked_at", UTCDateTime),
    _optional("last_used_at", UTCDateTime),
    _optional("window_start", UTCDateTime),
    _required("window_count", Integer, server_default="0"),
    Index("ix_api_tokens_user_name", "username", "name"),
)

#: an ``Idempotency-Key`` a user sent with a create or a step (through one API token, or none: ``""``),
#: written in the same transaction as the change: a retried request finds it and is answered with the case
#: it made, never makes a second one
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _required("username", String(63), primary_key=True),
    _required("token", String(63), primary_key=True),
    _required("key", String(255), primary_key=True),
    _required("fingerprint", String(64)),
    _required("ref", String(40)),
    _required("created_at", UTCDateTime),
)

access_log = Table(
    "access_log",
    metadata,
    _id(),
    _required("at", UTCDateTime),
    _required("os_user", String(63)),
    _required("host", String(255)),
    _optional("actor", String(63)),
    _required("action", String(40)),
    _required("detail", JSONType),
    Index("ix_access_log_at", "at"),
)
