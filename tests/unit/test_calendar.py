"""Working days and deadlines on the Chinese statutory calendar (engine.calendar)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine import calendar as calendar_module
from engine.calendar import FIXED_HOLIDAYS, PACKAGE_YEARS, Deadline, WorkingCalendar
from engine.errors import InputError

SH = ZoneInfo("Asia/Shanghai")
TZ = "Asia/Shanghai"
D = dt.date


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.fixture
def cal() -> WorkingCalendar:
    """Package data only, so the tests do not depend on what a supervisor put in cn.yaml."""
    return WorkingCalendar()


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process would: no provisional year warned about yet."""
    monkeypatch.setattr(calendar_module, "_warned_years", set())


def write(tmp_path: Path, text: str, name: str = "cn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the package's data ---------------------------------------------------------------------------


def test_installed_package_covers_2004_to_2026() -> None:
    # Pinned on purpose: a package upgrade that adds 2027 should make someone revisit the 2027 tests below.
    assert (min(PACKAGE_YEARS), max(PACKAGE_YEARS), len(PACKAGE_YEARS)) == (2004, 2026, 23)


def test_national_day_2026_per_package(cal: WorkingCalendar) -> None:
    assert [cal.is_working_day(D(2026, 10, d)) for d in range(1, 8)] == [False] * 7
    assert cal.is_working_day(D(2026, 10, 8))
    assert D(2026, 10, 10).weekday() == 5 and cal.is_working_day(D(2026, 10, 10))  # Saturday, 调休上班
    assert D(2026, 9, 20).weekday() == 6 and cal.is_working_day(D(2026, 9, 20))  # Sunday, 调休上班
    assert not cal.is_working_day(D(2026, 10, 11))  # the Sunday after stays a rest day
    assert not cal.is_provisional(2026)


def test_month_october_2026_marks(cal: WorkingCalendar) -> None:
    days = cal.month(2026, 10)
    assert len(days) == 31
    marks = {d.day: (working, note) for d, working, note in days}
    assert all(marks[d] == (False, "国庆节") for d in range(1, 8))
    assert marks[8] == (True, "")
    assert marks[10] == (True, "调休上班")
    assert marks[11] == (False, "周末")
    assert marks[31] == (False, "周末")


def test_month_september_2026_has_mid_autumn_and_a_sunday_worked(cal: WorkingCalendar) -> None:
    marks = {d.day: (working, note) for d, working, note in cal.month(2026, 9)}
    assert marks[20] == (True, "调休上班")
    assert [marks[d] for d in (25, 26, 27)] == [(False, "中秋")] * 3


# --- counting ---------------------------------------------------------------------------------------


def test_add_working_days_over_national_day(cal: WorkingCalendar) -> None:
    # 10-08 Thu (1), 10-09 Fri (2), 10-10 Sat 调休 (3), 10-11 Sun rest, 10-12 Mon (4), 10-13 Tue (5)
    assert cal.add_working_days(D(2026, 9, 30), 5) == D(2026, 10, 13)
    assert cal.working_days_between(D(2026, 9, 30), D(2026, 10, 13)) == 5
    assert cal.working_days_between(D(2026, 10, 13), D(2026, 9, 30)) == 0


def test_add_zero_working_days_is_the_day_itself(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(D(2026, 10, 3), 0) == D(2026, 10, 3)
    with pytest.raises(ValueError, match="0 or more"):
        cal.add_working_days(D(2026, 10, 3), -1)


def test_five_working_days_from_2026_09_30(cal: WorkingCalendar) -> None:
    deadline = cal.deadline(at(2026, 9, 30, 16, 45), 5, "working_days", TZ)
    assert deadline == Deadline(at=at(2026, 10, 14), provisional=False)  # 24:00 of Tue 2026-10-13
    assert deadline.at.tzinfo == SH


def test_seven_days_rolled_forward_over_national_day(cal: WorkingCalendar) -> None:
    # Thu 09-24 + 7 calendar days = Thu 10-01, a holiday: rolled to Thu 10-08, the next working day.
    deadline = cal.deadline(at(2026, 9, 24, 10), 7, "days", TZ)
    assert deadline == Deadline(at=at(2026, 10, 9), provisional=False)


def test_seven_days_not_rolled_when_the_day_is_worked(cal: WorkingCalendar) -> None:
    # Sat 10-03 + 7 = Sat 10-10, a 调休 working day: no roll.
    assert cal.deadline(at(2026, 10, 3, 9), 7, "days", TZ).at == at(2026, 10, 11)


def test_entry_on_a_friday(cal: WorkingCalendar) -> None:
    # Fri 2026-11-06: the weekend is skipped, Mon 11-09 is the first working day.
    assert cal.deadline(at(2026, 11, 6, 17, 30), 1, "working_days", TZ).at == at(2026, 11, 10)
    # Fri 2026-09-18: the Sunday after is a 调休 working day.
    assert cal.deadline(at(2026, 9, 18, 17, 30), 1, "working_days", TZ).at == at(2026, 9, 21)


def test_entry_day_is_taken_in_the_workflow_timezone(cal: WorkingCalendar) -> None:
    # Thu 16:30 UTC is already Fri 00:30 in Shanghai, so Friday is the (uncounted) entry day.
    entered = dt.datetime(2026, 11, 5, 16, 30, tzinfo=dt.UTC)
    assert cal.deadline(entered, 1, "working_days", TZ).at == at(2026, 11, 10)


def test_zero_working_days_ends_at_midnight_of_the_entry_day(cal: WorkingCalendar) -> None:
    assert cal.deadline(at(2026, 10, 2, 10), 0, "working_days", TZ) == Deadline(at(2026, 10, 3), False)


def test_forty_eight_hours_are_exact(cal: WorkingCalendar) -> None:
    entered = dt.datetime(2026, 9, 30, 1, 15, tzinfo=dt.UTC)  # 09:15 in Shanghai
    deadline = cal.deadline(entered, 48, "hours", TZ)
    assert deadline == Deadline(at=at(2026, 10, 2, 9, 15), provisional=False)
    assert deadline.at - entered == dt.timedelta(hours=48)
    assert deadline.at.utcoffset() == dt.timedelta(hours=8)


def test_bad_deadline_arguments(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        cal.deadline(dt.datetime(2026, 9, 30), 1, "days", TZ)
    with pytest.raises(ValueError, match="unknown unit"):
        cal.deadline(at(2026, 9, 30), 1, "weeks", TZ)
    with pytest.raises(ValueError, match="0 or more"):
        cal.deadline(at(2026, 9, 30), -1, "days", TZ)
    with pytest.raises(ValueError, match="unknown timezone"):
        cal.deadline(at(2026, 9, 30), 1, "days", "Mars/Olympus")


# --- provisional years ------------------------------------------------------------------------------


def test_fixed_date_holidays_are_the_statutory_ones() -> None:
    assert FIXED_HOLIDAYS == {
        (1, 1): "元旦",
        (5, 1): "劳动节",
        (5, 2): "劳动节",
        (10, 1): "国庆节",
        (10, 2): "国庆节",
        (10, 3): "国庆节",
    }


def test_deadline_into_2027_is_provisional_and_warns_once(
    cal: WorkingCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.calendar")
    # Fri 2026-12-25: 12-28..31 (4), 2027-01-01 元旦 (provisional), 01-04..08 (9), Mon 01-11 (10)
    first = cal.deadline(at(2026, 12, 25, 11), 10, "working_days", TZ)
    again = cal.deadline(at(2026, 12, 28, 11), 10, "working_days", TZ)
    assert first == Deadline(at=at(2027, 1, 12), provisional=True)
    assert again.provisional
    assert cal.month(2027, 10)[0] == (D(2027, 10, 1), False, "国庆节")
    warnings = [r for r in caplog.records if r.name == "engine.calendar"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "2027" in warnings[0].getMessage()


def test_deadline_within_2026_is_not_provisional_and_does_not_warn(
    cal: WorkingCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.calendar")
    assert cal.deadline(at(2026, 12, 29, 9), 2, "working_days", TZ) == Deadline(at(2027, 1, 1), False)
    assert caplog.records == []


def test_provisional_years(cal: WorkingCalendar) -> None:
    assert cal.provisional_years([2027, 2003, 2026, 2027, 2004]) == [2003, 2027]
    assert cal.is_provisional(2027)
    assert not cal.is_provisional(2004)


def test_provisional_year_uses_weekends_and_fixed_dates(cal: WorkingCalendar) -> None:
    marks = {d.day: (working, note) for d, working, note in cal.month(2027, 5)}
    assert marks[1] == (False, "劳动节") and marks[2] == (False, "劳动节")  # Sat, Sun
    assert marks[3] == (True, "")  # no 补休 guessed
    assert marks[8] == (False, "周末")
    assert not cal.is_working_day(D(2003, 1, 1))  # before the package's range too


# --- the supervisor's file ---------------------------------------------------------------------------


def test_file_overrides_the_package_both_ways(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "2026:\n  holidays:\n    - {from: 2026-10-12, to: 2026-10-13, name: 特别休假}\n  workdays:\n    - 2026-10-05\n",
    )
    cal = WorkingCalendar.load(path)
    assert cal.is_working_day(D(2026, 10, 5))  # a package holiday made a workday
    assert not cal.is_working_day(D(2026, 10, 12))  # a package workday made a holiday
    marks = {d.day: (working, note) for d, working, note in cal.month(2026, 10)}
    assert marks[5] == (True, "调休上班")
    assert marks[12] == (False, "特别休假")
    # 10-05 (1), 10-08 (2), 10-09 (3), 10-10 (4), 10-12/13 off, 10-14 (5)
    assert cal.add_working_days(D(2026, 9, 30), 5) == D(2026, 10, 14)


def test_unnamed_file_holiday_keeps_the_package_name(tmp_path: Path) -> None:
    cal = WorkingCalendar.load(write(tmp_path, "2026:\n  holidays: [2026-10-01, 2026-10-09]\n"))
    assert cal.month(2026, 10)[0] == (D(2026, 10, 1), False, "国庆节")
    assert cal.month(2026, 10)[8] == (D(2026, 10, 9), False, "节假日")


def test_official_year_from_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="engine.calendar")
    path = write(
        tmp_path,
        "2027:\n"
        "  official: true\n"
        "  holidays:\n"
        "    - {from: 2027-10-01, to: 2027-10-07, name: 国庆节}\n"
        "  workdays: [2027-09-26, 2027-10-09]\n",
    )
    cal = WorkingCalendar.load(path)
    assert not cal.is_provisional(2027)
    assert not cal.is_working_day(D(2027, 10, 7))
    assert cal.is_working_day(D(2027, 10, 9))  # Saturday, 调休
    assert cal.is_working_day(D(2027, 1, 1))  # official: only the file's days, no fixed-date guess
    assert cal.deadline(at(2027, 9, 30, 9), 1, "working_days", TZ) == Deadline(at(2027, 10, 9), False)
    assert caplog.records == []


def test_file_without_official_keeps_the_year_provisional(tmp_path: Path) -> None:
    cal = WorkingCalendar.load(write(tmp_path, "2027:\n  workdays: [2027-01-01]\n"))
    assert cal.is_provisional(2027)
    assert cal.is_working_day(D(2027, 1, 1))  # the file wins over the fixed-date rule
    assert not cal.is_working_day(D(2027, 5, 1))


def test_official_false_marks_a_package_year_provisional(tmp_path: Path) -> None:
    cal = WorkingCalendar.load(write(tmp_path, "2026:\n  official: false\n"))
    assert cal.is_provisional(2026)
    assert not cal.is_working_day(D(2026, 10, 5))  # the package's days are still used


def test_bundled_file_adds_nothing(cal: WorkingCalendar) -> None:
    assert calendar_module.DEFAULT_PATH.is_file()
    assert WorkingCalendar.load().fingerprint == cal.fingerprint


def test_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cal: WorkingCalendar) -> None:
    monkeypatch.setattr(calendar_module, "DEFAULT_PATH", tmp_path / "absent.yaml")
    assert WorkingCalendar.load().fingerprint == cal.fingerprint
    with pytest.raises(InputError, match="no such calendar file"):
        WorkingCalendar.load(tmp_path / "typo.yaml")


def test_fingerprint_follows_the_data_not_the_text(tmp_path: Path, cal: WorkingCalendar) -> None:
    one = WorkingCalendar.load(write(tmp_path, "2026:\n  workdays: [2026-10-05]\n", "a.yaml"))
    commented = WorkingCalendar.load(write(tmp_path, "# note\n2026:\n  workdays:\n    - 2026-10-05  # why\n", "b.yaml"))
    two = WorkingCalendar.load(write(tmp_path, "2026:\n  workdays: [2026-10-06]\n", "c.yaml"))
    assert len(cal.fingerprint) == 12
    assert one.fingerprint == commented.fingerprint
    assert len({cal.fingerprint, one.fingerprint, two.fingerprint}) == 3


def test_bad_content_is_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "2026:\n"  # 1
        "  holiday: [2026-10-01]\n"  # 2
        "  holidays:\n"  # 3
        "    - 2026-02-30\n"  # 4
        "    - 2027-01-01\n"  # 5
        "    - {from: 2026-10-09, to: 2026-10-08}\n"  # 6
        "    - {form: 2026-11-02}\n"  # 7
        "    - 2026-12-01\n"  # 8
        "  workdays: [2026-12-01]\n"  # 9
        "  official: yes\n"  # 10
        "twenty27:\n"  # 11
        "  holidays: []\n",
    )
    with pytest.raises(InputError) as info:
        WorkingCalendar.load(path)
    lines = str(info.value).splitlines()
    assert lines == [
        "9 problems in calendar file:",
        f"{path}:2:3: unknown key 'holiday' under 2026; did you mean 'holidays'?",
        f"{path}:4:7: 2026-02-30 is not a real date (no such day in the calendar)",
        f"{path}:5:7: 2027-01-01 is listed under 2026; move it to the 2027 block",
        f"{path}:6:30: range ends (2026-10-08) before it starts (2026-10-09); swap 'from' and 'to'",
        f"{path}:7:7: a range under 'holidays' needs 'from:' (and 'to:' unless it is one day)",
        f"{path}:7:8: unknown key 'form' in a range under 'holidays'; did you mean 'from'?",
        f"{path}:9:14: 2026-12-01 is listed under both 'holidays' (line 8) and 'workdays'; keep one",
        f"{path}:10:13: 'official' must be true or false, not 'yes'",
        f"{path}:11:1: 'twenty27' is not a year; top-level keys are years such as 2027",
    ]


def test_wrong_shapes_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "2026:\n  holidays: 2026-10-01\n  workdays:\n    - 20261001\n    - {from: 2026-10-03, name: 国庆节}\n",
    )
    with pytest.raises(InputError) as info:
        WorkingCalendar.load(path)
    assert str(info.value).splitlines()[1:] == [
        f"{path}:2:13: 'holidays' must be a list of dates (- 2027-01-01) or ranges (- {{from: D, to: D}})",
        f"{path}:4:7: 20261001 is not a date; write it as YYYY-MM-DD, e.g. 2026-10-01",
        f"{path}:5:26: unknown key 'name' in a range under 'workdays'; known: from, to",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026:\n  holidays: [2026-10-01\n", ":3:1: YAML syntax: did not find expected ',' or ']'"),
        ("2026: !!python/object/apply:os.system [ls]\n", ":1:7: YAML tags such as"),
        ("- 2026-01-01\n", ":1:1: a calendar file is a mapping of years"),
    ],
)
def test_unusable_yaml_is_located(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        WorkingCalendar.load(path)
    assert str(info.value).splitlines()[1].startswith(f"{path}{expected}")
    assert info.value.exit_code == 2


def test_comment_only_and_empty_years_are_fine(tmp_path: Path, cal: WorkingCalendar) -> None:
    assert WorkingCalendar.load(write(tmp_path, "# nothing yet\n\n---\n", "a.yaml")).fingerprint == cal.fingerprint
    assert WorkingCalendar.load(write(tmp_path, "2027:\n", "b.yaml")).fingerprint == cal.fingerprint
