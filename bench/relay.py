"""Throughput of ``outbox relay`` into the in-app inbox, against Core doing the same writes.

    python -m bench.relay [--messages 5000] [--db URL]

Fills the outbox the real way (cases submitted through the engine, one
in-app message each to a reviewer), then times one relay draining it; the
baseline drains a copy with SQLAlchemy Core performing the same writes per
message (claim, insert the inbox row, mark sent — one transaction each).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sqlalchemy import insert, select, update

from bench.transition import BUNDLED
from casework.synthetic import SyntheticPeople
from db import InboxMessage, OutboxMessage, make_engine, upgrade
from engine import Casework, load_definition_file
from notifications import NotificationConfig, Relay, default_channels
from notifications.config import RelayConfig


def _fill(url: str, n: int) -> Casework:
    engine = make_engine(url)
    upgrade(engine)
    svc = Casework(engine)
    svc.load_workflow(load_definition_file(BUNDLED))
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    svc.add_user("wu", "吴明辉", ["reviewer"], ["*"])
    people = SyntheticPeople(11)
    for _ in range(n):
        ref = svc.create_case("poverty_archive", "lin", people.household()).ref
        svc.fire(ref, "submit", "lin")
    return svc


def relay_drain(svc: Casework) -> tuple[int, float]:
    config = NotificationConfig(relay=RelayConfig(batch=500))
    relay = Relay(svc.engine, svc, default_channels(config), config)
    sent = 0
    t0 = time.perf_counter()
    while True:
        report = relay.run_once()
        if not report.sent:
            break
        sent += report.sent
    return sent, time.perf_counter() - t0


def core_drain(svc: Casework) -> tuple[int, float]:
    outbox, inbox = OutboxMessage.__table__, InboxMessage.__table__
    now = svc.clock.now()
    sent = 0
    t0 = time.perf_counter()
    with svc.engine.connect() as conn:
        ids = conn.execute(select(outbox.c.id).where(outbox.c.status == "pending")).scalars().all()
    for oid in ids:
        with svc.engine.begin() as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == oid)).one()
            conn.execute(update(outbox).where(outbox.c.id == oid).values(status="sending", attempts=1))
            conn.execute(
                insert(inbox).values(
                    outbox_id=oid,
                    username=row.recipient,
                    case_ref=row.context["case"]["ref"],
                    subject="待审核",
                    body="…",
                    created_at=now,
                )
            )
            conn.execute(update(outbox).where(outbox.c.id == oid).values(status="sent", sent_at=now))
        sent += 1
    return sent, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--db", help="database URL prefix (default: temporary SQLite files)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, drain in (("Core, same writes per message", core_drain), ("outbox relay → inbox", relay_drain)):
            svc = _fill(f"sqlite:///{tmp}/{name.split()[0]}.db", args.messages)
            sent, seconds = drain(svc)
            results[name] = (sent, seconds)
            svc.engine.dispose()
    base = results["Core, same writes per message"]
    print(f"{'in-app delivery':32} {'messages':>9} {'seconds':>8} {'msg/s':>8} {'× Core time':>12}")
    for name, (sent, seconds) in results.items():
        print(f"{name:32} {sent:9d} {seconds:8.2f} {sent / seconds:8.0f} {seconds / base[1] * base[0] / sent:12.2f}")


if __name__ == "__main__":
    main()
