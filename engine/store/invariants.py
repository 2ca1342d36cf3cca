"""What must always be true of the stored cases — checked over the whole database.

Every change is one transaction, so after any crash these hold; if one does
not, something outside the engine wrote to the database (or the engine has
a bug). ``casework check`` runs :func:`check_invariants`:

1. **state** — a case's state is the ``to_state`` of its last audit event,
   and the case's ``audit_seq``/``audit_head`` are that event's seq and hash;
2. **sequence** — a case's audit events are numbered 1..n with no gap;
3. **timers** — a case waiting in a state that declares timers (a
   reminder, an escalation or a timeout; not a bare ``deadline:``, which is
   a column of the case) has that state's timers (from when it entered it),
   and no pending timer belongs to a state the case has left;
4. **outbox** — every outbox row belongs to an audit event of its case;
   (public notices are not outbox rows: see **notices**);
   every event a ``notify`` rule matches has a row for each user who held
   the role, covered the case and existed at the time;
5. **notices** — every case a published notice lists has the ``publicised``
   event naming it, and every such event a notice that lists the case; a
   case in its publicity state has a period end exactly when it is on a
   published notice since it entered, that end is the notice's, and its
   automatic end of publicity is due then
   (:func:`engine.store.publicity.publication_problems`);
6. **keys** — a case that is not void holds the key of each of its
   ``unique`` field values, and no key belongs to a void case.
7. **limits** — every row a case counts toward a limit across cases names
   an event of its trail that fired a step the limit is checked at, in the
   row's period (:func:`engine.store.quotas.ledger_problems`).

The hash chain itself is ``casework audit verify``. The checks are set-wise
SQL plus one streaming pass over the events that notify, so 100,000 cases
take seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, and_, func, literal, or_, select

from engine.access import covers
from engine.deadlines import timed_on_entry
from engine.definition.model import WorkflowDef
from engine.models import InvariantReport
from engine.store import tables
from engine.store.access import standing_at, user_standings
from engine.store.publicity import publication_problems
from engine.store.quotas import ledger_problems

__all__ = ["check_invariants"]

_cases = tables.cases
_events = tables.events
_timers = tables.timers
_outbox = tables.outbox
_keys = tables.keys


def check_invariants(conn: Connection, definition: Callable[[int], WorkflowDef]) -> InvariantReport:
    """Check every invariant above; ``definition(version_id)`` gives a case's workflow."""
    report = InvariantReport(
        cases=conn.execute(select(func.count()).select_from(_cases)).scalar_one(),
        events=conn.execute(select(func.count()).select_from(_events)).scalar_one(),
    )
    versions = conn.execute(select(_cases.c.workflow_version_id).distinct()).scalars().all()
    workflows = {v: definition(v) for v in versions}
    _state_and_sequence(conn, report)
    _timers_match(conn, report, workflows)
    _outbox_matches(conn, report, workflows)
    _notices_match(conn, report, workflows)
    _keys_match(conn, report, workflows)
    for ref, problem in ledger_problems(conn, workflows):
        report.add("limits", ref, problem)
    return report


def _state_and_sequence(conn: Connection, report: InvariantReport) -> None:
    stats = (
        select(
            _events.c.case_id,
            func.count().label("n"),
            func.min(_events.c.seq).label("first"),
            func.max(_events.c.seq).label("last"),
        )
        .group_by(_events.c.case_id)
        .subquery()
    )
    last = _events.alias("last_event")
    query = (
        select(
            _cases.c.ref,
            _cases.c.state,
            _cases.c.audit_seq,
            _cases.c.audit_head,
            stats.c.n,
            stats.c.first,
            stats.c.last,
            last.c.to_state,
            last.c.hash,
        )
        .outerjoin(stats, stats.c.case_id == _cases.c.id)
        .outerjoin(last, and_(last.c.case_id == _cases.c.id, last.c.seq == stats.c.last))
        .where(
            or_(
                stats.c.n.is_(None),
                stats.c.first != 1,
                stats.c.n != stats.c.last,
                stats.c.last != _cases.c.audit_seq,
                last.c.to_state != _cases.c.state,
                last.c.hash != _cases.c.audit_head,
            )
        )
    )
    for r in conn.execute(query):
        if r.n is None:
            report.add("sequence", r.ref, "the case has no audit events")
            continue
        if r.first != 1 or r.n != r.last:
            report.add("sequence", r.ref, f"{r.n} events numbered {r.first}..{r.last}: a gap or a duplicate")
        if r.last != r.audit_seq or r.hash != r.audit_head:
            report.add("state", r.ref, f"the case records event {r.audit_seq} as its last, the trail ends at {r.last}")
        if r.to_state != r.state:
            report.add("state", r.ref, f"the case is in {r.state}, its last event moved it to {r.to_state}")


def _timers_match(conn: Connection, report: InvariantReport, workflows: dict[int, WorkflowDef]) -> None:
    # pending timers of a state the case has left would fire on the wrong state
    stale = (
        select(_cases.c.ref, _cases.c.state, _timers.c.state.label("timer_state"), _timers.c.kind)
        .join(_timers, _timers.c.case_id == _cases.c.id)
        .where(_timers.c.status == "pending", _timers.c.state != _cases.c.state)
    )
    for r in conn.execute(stale):
        report.add("timers", r.ref, f"a pending {r.kind} timer of {r.timer_state}, but the case is in {r.state}")
    # a waiting case in a timed state must have that state's timers, written when it entered
    for version_id, wf in workflows.items():
        timed = [s for s, st in wf.states.items() if not st.final and timed_on_entry(wf, s)]
        if not timed:
            continue
        have = (
            select(literal(1))
            .where(
                _timers.c.case_id == _cases.c.id,
                _timers.c.state == _cases.c.state,
                _timers.c.entered_at == _cases.c.entered_at,
            )
            .exists()
        )
        missing = select(_cases.c.ref, _cases.c.state).where(
            _cases.c.workflow_version_id == version_id,
            _cases.c.state.in_(timed),
            _cases.c.paused_at.is_(None),
            ~have,
        )
        for waiting in conn.execute(missing):
            report.add("timers", waiting.ref, f"waiting in {waiting.state} without that state's timers")


def _notices_match(conn: Connection, report: InvariantReport, workflows: dict[int, WorkflowDef]) -> None:
    publicity = {
        v: (wf.publicity.state, wf.timezone, wf.states[wf.publicity.state].timeout is not None)
        for v, wf in workflows.items()
        if wf.publicity is not None
    }
    for ref, problem in publication_problems(conn, publicity):
        report.add("notices", ref, problem)


def _outbox_matches(conn: Connection, report: InvariantReport, workflows: dict[int, WorkflowDef]) -> None:
    orphans = (
        select(_outbox.c.key, _cases.c.ref)
        .join(_cases, _cases.c.id == _outbox.c.case_id)
        .outerjoin(_events, and_(_events.c.case_id == _outbox.c.case_id, _events.c.seq == _outbox.c.event_seq))
        .where(_outbox.c.event_seq.is_not(None), _events.c.id.is_(None))
    )
    for r in conn.execute(orphans):
        report.add("outbox", r.ref, f"outbox row {r.key} has no audit event behind it")
    # who held which roles and scopes, and could act, when each event happened (users are edited and disabled)
    standings = user_standings(conn)
    for version_id, wf in workflows.items():
        enter_rules = {t for kind, t in (r.event for r in wf.notify) if kind == "enter"}
        fire_rules = {t for kind, t in (r.event for r in wf.notify) if kind == "fire"}
        if not (enter_rules or fire_rules):
            continue
        entered = and_(_events.c.to_state != _events.c.from_state, _events.c.from_state.is_not(None))
        query = (
            select(
                _cases.c.id,
                _cases.c.ref,
                _cases.c.scope,
                _events.c.seq,
                _events.c.at,
                _events.c.trigger,
                _events.c.from_state,
                _events.c.to_state,
            )
            .join(_events, _events.c.case_id == _cases.c.id)
            .where(
                _cases.c.workflow_version_id == version_id,
                # a case moved to this version (workflow migrate) took its earlier steps under another
                # version's rules, and their messages carry that version: only its steps since are judged here
                _events.c.seq > _LAST_MOVE,
                _events.c.action == "fired",
                or_(
                    and_(entered, _events.c.to_state.in_(sorted(enter_rules))),
                    _events.c.trigger.in_(sorted(fire_rules)),
                ),
            )
            .order_by(_cases.c.id, _events.c.seq)
        )
        written = _outbox_keys(conn, version_id)
        for e in conn.execute(query.execution_options(yield_per=5000)):
            is_entry = e.to_state != e.from_state
            for index, rule in enumerate(wf.notify):
                kind, target = rule.event
                if not (
                    (kind == "enter" and is_entry and target == e.to_state) or (kind == "fire" and target == e.trigger)
                ):
                    continue
                who_kind, who = rule.recipient
                if who_kind != "role":
                    continue  # user:/field: recipients are checked by the delivery tests, not here
                for username, (created_at, history) in standings.items():
                    then = standing_at(history, e.at)
                    if then.enabled and who in then.roles and covers(then.scopes, e.scope) and created_at <= e.at:
                        if "inbox" in rule.channels and f"{e.id}:{e.seq}:{index}:inbox:{username}" not in written:
                            report.add("outbox", e.ref, f"event {e.seq}: no inbox message for {username} ({who})")


_moves = _events.alias("moves")
#: the seq of the case's last move to another version (0: never moved)
_LAST_MOVE = (
    select(func.coalesce(func.max(_moves.c.seq), 0))
    .where(_moves.c.case_id == _cases.c.id, _moves.c.action == "migrated")
    .scalar_subquery()
)


def _outbox_keys(conn: Connection, version_id: int) -> set[str]:
    return set(
        conn.execute(
            select(_outbox.c.key).where(_outbox.c.workflow_version_id == version_id).execution_options(yield_per=10000)
        ).scalars()
    )


def _keys_match(conn: Connection, report: InvariantReport, workflows: dict[int, WorkflowDef]) -> None:
    for version_id, wf in workflows.items():
        void = [s for s, st in wf.states.items() if st.void]
        if void:
            held = (
                select(_cases.c.ref, _keys.c.field)
                .join(_keys, _keys.c.case_id == _cases.c.id)
                .where(_cases.c.workflow_version_id == version_id, _cases.c.state.in_(void))
            )
            for r in conn.execute(held):
                report.add("keys", r.ref, f"a void case still holds the {r.field} key")
        if not wf.unique_fields:
            continue
        keyed = {
            (case_id, name)
            for case_id, name in conn.execute(
                select(_keys.c.case_id, _keys.c.field)
                .join(_cases, _cases.c.id == _keys.c.case_id)
                .where(_cases.c.workflow_version_id == version_id)
            )
        }
        live = select(_cases.c.id, _cases.c.ref, _cases.c.data).where(_cases.c.workflow_version_id == version_id)
        if void:
            live = live.where(_cases.c.state.not_in(void))
        for case in conn.execute(live.execution_options(yield_per=5000)):
            for name in wf.unique_fields:
                if case.data.get(name) is not None and (case.id, name) not in keyed:
                    report.add("keys", case.ref, f"{name} is set but not claimed: another case could take it")
