"""Every SQL statement the engine runs, with typed rows, and the transactions they run in.

One module per table or concern: :mod:`~engine.store.cases`,
:mod:`~engine.store.keys`, :mod:`~engine.store.refs`,
:mod:`~engine.store.versions`, :mod:`~engine.store.users`,
:mod:`~engine.store.timers`, :mod:`~engine.store.publicity`,
:mod:`~engine.store.outbox`, :mod:`~engine.store.audit`,
:mod:`~engine.store.jobs`, :mod:`~engine.store.inbox` (what waits for a user),
:mod:`~engine.store.invariants` (``casework check``); :mod:`~engine.store.writes`
and :mod:`~engine.store.sqlite` write one change (or a batch) in as few round
trips as the backend allows; :mod:`~engine.store.database` runs transactions
and retries them by error code (:mod:`~engine.store.failures`). Functions take
the caller's ``Connection``: the transaction belongs to the caller.
"""

from __future__ import annotations

from engine.store.database import Database, VersionPin
from engine.store.failures import Failure, classify
from engine.store.tables import CaseRow, EventRow, NoticeRow, ObjectionRow, TimerRow, UserRow, VersionRow

__all__ = [
    "CaseRow",
    "Database",
    "EventRow",
    "Failure",
    "NoticeRow",
    "ObjectionRow",
    "TimerRow",
    "UserRow",
    "VersionPin",
    "VersionRow",
    "classify",
]
