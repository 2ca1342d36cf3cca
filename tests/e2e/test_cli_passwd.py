"""``casework user passwd``: the operator sets a web password (prompted twice, or from stdin)."""

from __future__ import annotations

from tests.e2e.conftest import Seeded
from tests.e2e.runner import casework


def test_a_password_from_stdin_lets_the_user_log_in(sqlite_seeded: Seeded) -> None:
    result = casework(sqlite_seeded.url, "user", "passwd", "lin", "--password-stdin", input="correct-horse-7\n")
    assert result.rc == 0, result.err
    assert "password set for lin" in result.out + result.err
    token, session = sqlite_seeded.svc.logins.login("lin", "correct-horse-7", "127.0.0.1")
    assert session.username == "lin" and token


def test_the_prompt_asks_twice_and_refuses_a_mismatch(sqlite_seeded: Seeded) -> None:
    result = casework(sqlite_seeded.url, "user", "passwd", "lin", input="correct-horse-7\nanother-horse-8\n")
    assert result.rc != 0
    assert "do not match" in (result.out + result.err).lower() or "match" in (result.out + result.err).lower()


def test_a_weak_password_is_refused_with_what_would_be_right(sqlite_seeded: Seeded) -> None:
    result = casework(sqlite_seeded.url, "user", "passwd", "lin", "--password-stdin", input="short\n")
    assert result.rc == 1
    assert "at least 10 characters" in result.out + result.err
    assert sqlite_seeded.svc.access_log(action="set_password") == []


def test_an_unknown_user_is_refused(sqlite_seeded: Seeded) -> None:
    result = casework(sqlite_seeded.url, "user", "passwd", "nobody", "--password-stdin", input="correct-horse-7\n")
    assert result.rc == 1
    assert "no user 'nobody'" in result.out + result.err
