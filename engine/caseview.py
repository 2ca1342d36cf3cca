"""How a stored case is shown: its state's label, its deadline and the working time left."""

from __future__ import annotations

import datetime as dt

from engine.deadlines import Deadlines, describe_left
from engine.definition import WorkflowDef
from engine.models import Action, CaseView
from engine.store.cases import ShownRow

__all__ = ["case_view"]


def case_view(
    wf: WorkflowDef,
    row: ShownRow,
    now: dt.datetime,
    deadlines: Deadlines,
    actions: tuple[Action, ...] | None = None,
) -> CaseView:
    """The case as a user sees it at ``now`` (with the steps they may take, if ``actions`` is given)."""
    deadline, provisional, paused, overdue, left, remaining = None, False, False, False, None, None
    if row.paused_at is not None:
        paused = True
        remaining = row.paused_left or {"unit": "working_days", "amount": 0}
        left = f"paused with {describe_left(remaining)}"
    elif row.deadline_at is not None:
        deadline, provisional, overdue = row.deadline_at, row.deadline_provisional, now >= row.deadline_at
        remaining = deadlines.left(wf, row.state, now, row.deadline_at)
        left = describe_left(remaining)
    st = wf.states[row.state]
    return CaseView(
        ref=row.ref,
        workflow=wf.name,
        workflow_version=wf.version,
        state=row.state,
        state_label=st.label,
        final=st.final,
        scope=row.scope,
        data=row.data,
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deadline=deadline,
        overdue=overdue,
        deadline_provisional=provisional,
        paused=paused,
        time_left=left,
        left=remaining,
        actions=actions,
        timezone=wf.timezone,
    )
