"""What must be told, as outbox rows: computed here, written inside the change's transaction.

Nothing is sent here: the engine writes one row per (event, rule, channel,
recipient) with a unique idempotency key, in the same transaction as the
state change, and the notifications layer delivers it later. The row carries
the template name and a *masked* context, so what a message can say about a
household is decided here, by policy, not by the template.

Public notices are not outbox rows: a notice is rendered and stored when it
is published (:mod:`engine.publicity`), never afterwards by the relay.

Recipients: a role means every user holding it whose scopes cover the case
(inbox; email too if they have an address); ``user:NAME`` one user;
``field:F`` the email address in the case's field F.

Pure functions: the caller passes the people (the user directory) and writes
the rows (:func:`engine.store.outbox.add_messages`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from engine.access import Person, covers
from engine.definition.model import WorkflowDef
from engine.masking import public_view

__all__ = ["case_context", "event_messages", "role_messages", "user_messages"]


def case_context(wf: WorkflowDef, ref: str, state: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``case`` a template sees: masked fields, plus ref, state and its label."""
    view = public_view(wf.fields, data, id_policy=wf.id_policy)
    view.update(ref=ref, state=state, state_label=wf.states[state].label)
    return view


def event_messages(
    wf: WorkflowDef,
    *,
    version_id: int,
    case_id: int,
    ref: str,
    scope: str | None,
    data: Mapping[str, Any],
    seq: int,
    trigger: str | None,
    from_state: str | None,
    to_state: str,
    actor: str,
    now: dt.datetime,
    people: Sequence[Person],
) -> list[dict[str, Any]]:
    """The outbox rows the workflow asks for after one audit event (a step, or entering a state)."""
    rows: list[dict[str, Any]] = []
    entered = to_state != from_state
    matching = [
        (index, rule)
        for index, rule in enumerate(wf.notify)
        if (rule.event[0] == "enter" and entered and rule.event[1] == to_state)
        or (rule.event[0] == "fire" and rule.event[1] == trigger)
    ]
    if not matching:
        return rows
    case = case_context(wf, ref, to_state, data)
    workflow = {"name": wf.name, "title": wf.title}
    event = {
        "trigger": trigger,
        "trigger_label": wf.transitions[trigger].label if trigger else None,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "at": now.astimezone(ZoneInfo(wf.timezone)).isoformat(timespec="minutes"),
    }
    for index, rule in matching:
        rows += _messages(
            _recipients(rule.recipient, rule.channels, people, scope, data),
            key=f"{case_id}:{seq}:{index}",
            case_id=case_id,
            seq=seq,
            version_id=version_id,
            template=rule.template,
            context={"case": case, "workflow": workflow, "event": event},
            now=now,
        )
    return rows


def role_messages(
    wf: WorkflowDef,
    *,
    version_id: int,
    case_id: int,
    scope: str | None,
    data: Mapping[str, Any],
    key: str,
    to: str,
    template: str,
    channels: tuple[str, ...],
    context: dict[str, Any],
    now: dt.datetime,
    people: Sequence[Person],
) -> list[dict[str, Any]]:
    """One templated message to a role (``to``) about a case, outside any step (a timer's reminder)."""
    return _messages(
        _recipients(("role", to), channels, people, scope, data),
        key=key,
        case_id=case_id,
        seq=None,
        version_id=version_id,
        template=template,
        context={**context, "workflow": {"name": wf.name, "title": wf.title}},
        now=now,
    )


def user_messages(
    *,
    version_id: int,
    key: str,
    user: Person,
    template: str,
    channels: tuple[str, ...],
    context: dict[str, Any],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """One templated message to one user, about no single case (a digest)."""
    rows = []
    for channel in channels:
        if channel == "email" and not user.email:
            continue
        recipient = user.email if channel == "email" and user.email else user.username
        rows.append(
            _row(
                key=f"{key}:{channel}:{recipient}",
                kind="message",
                case_id=None,
                seq=None,
                version_id=version_id,
                channel=channel,
                recipient=recipient,
                template=template,
                now=now,
                context={**context, "recipient": {"username": user.username, "name": user.name}},
            )
        )
    return rows


def _messages(
    recipients: list[tuple[str, str, str]],
    *,
    key: str,
    case_id: int,
    seq: int | None,
    version_id: int,
    template: str,
    context: dict[str, Any],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """One message row per (channel, recipient, name); the template sees who it is for (no username by email)."""
    return [
        _row(
            key=f"{key}:{channel}:{recipient}",
            kind="message",
            case_id=case_id,
            seq=seq,
            version_id=version_id,
            channel=channel,
            recipient=recipient,
            template=template,
            now=now,
            context={**context, "recipient": {"username": recipient if channel != "email" else None, "name": name}},
        )
        for channel, recipient, name in recipients
    ]


def _recipients(
    recipient: tuple[str, str],
    channels: tuple[str, ...],
    users: Sequence[Person],
    scope: str | None,
    data: Mapping[str, Any],
) -> list[tuple[str, str, str]]:
    """(channel, recipient, display name) for one rule."""
    kind, name = recipient
    if kind == "field":
        address = data.get(name)
        return [("email", address, "")] if address else []
    if kind == "user":
        chosen = [u for u in users if u.username == name]
    else:
        chosen = [u for u in users if name in u.roles and covers(u.scopes, scope)]
    out = []
    for person in chosen:
        for channel in channels:
            if channel == "email":
                if person.email:
                    out.append(("email", person.email, person.name))
            elif channel == "webhook":
                continue  # once per rule, below
            else:
                out.append((channel, person.username, person.name))
    if "webhook" in channels:
        out.append(("webhook", "webhook", ""))
    return out


def _row(
    *,
    key: str,
    kind: str,
    case_id: int | None,
    seq: int | None,
    version_id: int,
    channel: str,
    recipient: str,
    template: str,
    context: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "key": key,
        "kind": kind,
        "case_id": case_id,
        "event_seq": seq,
        "workflow_version_id": version_id,
        "channel": channel,
        "recipient": recipient,
        "template": template,
        "context": context,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
        "sent_at": None,
    }
