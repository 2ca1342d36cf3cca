"""Working days on the Chinese statutory calendar, and deadlines counted on them.

Where the data comes from, in order of precedence:

1. ``workflows/calendars/cn.yaml``, edited by a supervisor. A date it lists
   wins: a date under ``holidays:`` is a rest day, a date under
   ``workdays:`` is a working day, whatever the package says.
2. The ``chinesecalendar`` package (module ``chinese_calendar``), which holds
   the State Council's published schedule for each year it covers
   (:data:`PACKAGE_YEARS`; 2004–2026 in version 1.11.0).
3. For any other year, a *provisional* rule: Saturdays and Sundays are rest
   days, and so are the statutory holidays that fall on a fixed Gregorian
   date (:data:`FIXED_HOLIDAYS`).

A year is *official* (not provisional) when the package covers it, or when the
file marks it ``official: true`` (the file then holds that year's complete
schedule, so the fixed-date rule is not applied to it). ``official: false``
on a year the package covers marks it provisional (the package's days are
still used), for a supervisor who doubts the package. Results that depended on a provisional year say so, and
the first use of each provisional year logs one warning per process.

Why the provisional rule holds only fixed-date holidays: the 全国年节及纪念日放假办法
(as amended with effect from 2025-01-01) gives 元旦 January 1, 劳动节 May 1–2 and
国庆节 October 1–3 fixed dates. 春节 (除夕 to 正月初三), 端午 and 中秋 follow
the lunar calendar, and 清明 a solar term; neither package holds those dates
for years it does not cover, and even with them the State Council decides each
year how the days are bridged to the weekend and which weekends become working
days (调休) — so any guess would put real working days in the wrong place. The
provisional rule therefore *under*-counts rest days: a provisional deadline
can come earlier than the official one, never later, until the year is
entered.

Counting rules:

* The day a state is entered is not counted.
* "N working days" ends at 24:00 (in the workflow's timezone, i.e. 00:00 of
  the following day) of the Nth working day after the entry day. "0 working
  days" ends at 24:00 of the entry day itself.
* "N days" ends at 24:00 of the Nth calendar day after the entry day, rolled
  forward to 24:00 of the next working day if that day is a rest day.
* "N hours" is exact: the entry instant plus N × 3600 seconds of elapsed time,
  whatever the calendar or any DST change says.
* A deadline is provisional if any day it counted over lies in a provisional
  year. "N hours" never consults the calendar, so it is never provisional.

:attr:`Deadline.at` is an aware datetime in the workflow's timezone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from engine.definition.loader import LocDict, LocList, ParseFailed, locate, parse_yaml
from engine.errors import InputError, Problem
from engine.suggest import did_you_mean

__all__ = [
    "DEFAULT_PATH",
    "FIXED_HOLIDAYS",
    "PACKAGE_YEARS",
    "Deadline",
    "WorkingCalendar",
]

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).parents[1] / "workflows" / "calendars" / "cn.yaml"

# (month, day) → name: the statutory holidays with a fixed Gregorian date since 2025-01-01.
FIXED_HOLIDAYS: dict[tuple[int, int], str] = {
    (1, 1): "元旦",
    (5, 1): "劳动节",
    (5, 2): "劳动节",
    (10, 1): "国庆节",
    (10, 2): "国庆节",
    (10, 3): "国庆节",
}

# Bumped whenever the provisional rule or the way data is read changes, so the fingerprint follows.
_RULES_VERSION = "1"

_PKG_HOLIDAYS: dict[dt.date, str] = dict(chinese_calendar.holidays)
_PKG_WORKDAYS: dict[dt.date, str] = dict(chinese_calendar.workdays)
PACKAGE_YEARS: frozenset[int] = frozenset(d.year for d in _PKG_HOLIDAYS)

_WEEKEND_NOTE = "周末"
_WORKDAY_NOTE = "调休上班"
_HOLIDAY_NOTE = "节假日"  # a file holiday with no name, on a date the package does not name either

_YEAR_KEYS = ("holidays", "official", "workdays")
_RANGE_KEYS = {"holidays": ("from", "name", "to"), "workdays": ("from", "to")}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_warned_years: set[int] = set()
_warned_lock = threading.Lock()


def _package_note(english: str) -> str:
    """The Chinese name the package gives a holiday, e.g. "National Day" → "国庆节"."""
    try:
        return str(chinese_calendar.Holiday(english).chinese)
    except ValueError:  # a name added to the table without an enum member: show it as is
        return english


@dataclass(frozen=True)
class Deadline:
    """When a deadline falls, and whether it rests on provisional calendar data.

    Attributes:
        at: the moment the deadline passes, aware, in the workflow's timezone.
        provisional: True if a day counted lies in a year without official data.
    """

    at: dt.datetime
    provisional: bool


@dataclass(frozen=True)
class _Overrides:
    """What the supervisor's file says, already checked."""

    days: dict[dt.date, tuple[bool, str]] = field(default_factory=dict)  # date → (working?, note)
    official: dict[int, bool] = field(default_factory=dict)  # year → explicit ``official:``


class WorkingCalendar:
    """The Chinese statutory calendar: package data, the supervisor's file, and a provisional rule.

    Build one with :meth:`load`; it is immutable and holds no database state.
    """

    def __init__(self, overrides: _Overrides | None = None) -> None:
        self._overrides = overrides or _Overrides()
        self._fingerprint = _fingerprint(self._overrides)
        # day-counted deadlines depend only on the day entered: every step of a day shares them
        self._day_deadlines: dict[tuple[dt.date, int, str, str], Deadline] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> WorkingCalendar:
        """Read the calendar file and combine it with the package data.

        Args:
            path: the YAML file; by default ``workflows/calendars/cn.yaml`` in the
                repository. A missing default file means package data only; a
                missing file named explicitly is an error, since it is a typo.

        Raises:
            InputError: the file cannot be read or its content is wrong; the
                message has one ``FILE:LINE:COL: message`` line per problem.
        """
        target = path if path is not None else DEFAULT_PATH
        try:
            raw = target.read_bytes()
        except FileNotFoundError:
            if path is None:
                return cls()
            raise InputError(f"{target}: no such calendar file; check the path") from None
        except OSError as exc:
            raise InputError(f"{target}: cannot read the calendar file ({exc.strerror or exc})") from exc
        return cls(_parse_file(raw, str(target)))

    @property
    def fingerprint(self) -> str:
        """A short hash of the effective data: it changes when any day's status or note could."""
        return self._fingerprint

    def is_provisional(self, year: int) -> bool:
        """Whether ``year`` lacks official data (neither the package nor ``official: true``)."""
        explicit = self._overrides.official.get(year)
        if explicit is not None:
            return not explicit
        return year not in PACKAGE_YEARS

    def provisional_years(self, years: Iterable[int]) -> list[int]:
        """The provisional ones among ``years``, sorted, each once."""
        return sorted({y for y in years if self.is_provisional(y)})

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day."""
        return self._status(day)[0]

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day`` (``day`` itself not counted); ``n == 0`` gives ``day``.

        Raises:
            ValueError: ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, not {n}")
        current = day
        while n > 0:
            current += dt.timedelta(days=1)
            if self._status(current)[0]:
                n -= 1
        return current

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """How many working days lie in ``(start, end]``; 0 if ``end <= start``."""
        count = 0
        current = start + dt.timedelta(days=1)
        while current <= end:
            if self._status(current)[0]:
                count += 1
            current += dt.timedelta(days=1)
        return count

    def deadline(self, entered: dt.datetime, amount: int, unit: str, tz: str) -> Deadline:
        """When a state entered at ``entered`` times out, by the counting rules in the module docstring.

        Args:
            entered: when the state was entered; must be aware.
            amount: how many units; 0 or more.
            unit: ``"working_days"``, ``"days"`` or ``"hours"`` (as in ``Duration.unit``).
            tz: the workflow's IANA timezone, e.g. ``"Asia/Shanghai"``.

        Raises:
            ValueError: ``entered`` is naive, ``amount`` negative, ``unit`` or ``tz`` unknown.
        """
        if entered.tzinfo is None or entered.utcoffset() is None:
            raise ValueError("entered must be an aware datetime")
        if amount < 0:
            raise ValueError(f"amount must be 0 or more, not {amount}")
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {tz!r}; e.g. Asia/Shanghai") from exc
        if unit == "hours":
            # Through UTC, so the hours are elapsed time even where the zone has DST.
            at = (entered.astimezone(dt.UTC) + dt.timedelta(hours=amount)).astimezone(zone)
            return Deadline(at=at, provisional=False)
        entry_day = entered.astimezone(zone).date()
        key = (entry_day, amount, unit, tz)
        known = self._day_deadlines.get(key)
        if known is not None:
            return known
        if len(self._day_deadlines) > 4096:
            self._day_deadlines.clear()
        if unit == "working_days":
            last = self.add_working_days(entry_day, amount)
            first_counted = entry_day + dt.timedelta(days=1)
        elif unit == "days":
            first_counted = entry_day + dt.timedelta(days=amount)
            last = first_counted
            while not self._status(last)[0]:
                last += dt.timedelta(days=1)
        else:
            raise ValueError(f"unknown unit {unit!r}; expected 'working_days', 'days' or 'hours'")
        at = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        provisional = bool(self.provisional_years(range(first_counted.year, last.year + 1)))
        found = self._day_deadlines[key] = Deadline(at=at, provisional=provisional)
        return found

    def month(self, year: int, month: int) -> list[tuple[dt.date, bool, str]]:
        """Every day of a month as ``(day, working?, note)``.

        The note is the holiday's name (e.g. ``"国庆节"``), ``"调休上班"`` for a
        rest day made a working day, ``"周末"`` for an ordinary weekend day,
        and ``""`` for an ordinary working day.
        """
        day = dt.date(year, month, 1)
        out: list[tuple[dt.date, bool, str]] = []
        while day.month == month:
            working, note = self._status(day)
            out.append((day, working, note))
            day += dt.timedelta(days=1)
        return out

    def _status(self, day: dt.date) -> tuple[bool, str]:
        """(working?, note) for one day, by file, then package, then the provisional rule."""
        provisional = self.is_provisional(day.year)
        if provisional:
            _warn_provisional(day.year)
        override = self._overrides.days.get(day)
        if override is not None:
            return override
        if day.year in PACKAGE_YEARS:
            if day in _PKG_WORKDAYS:
                return True, _WORKDAY_NOTE
            if day in _PKG_HOLIDAYS:
                return False, _package_note(_PKG_HOLIDAYS[day])
        elif provisional:
            name = FIXED_HOLIDAYS.get((day.month, day.day))
            if name is not None:
                return False, name
        if day.weekday() >= 5:
            return False, _WEEKEND_NOTE
        return True, ""


def _warn_provisional(year: int) -> None:
    """Log, once per year per process, that ``year`` is computed provisionally."""
    if year in _warned_years:  # unlocked fast path: this runs for every day counted
        return
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    fixed = "、".join(dict.fromkeys(FIXED_HOLIDAYS.values()))
    log.warning(
        "no official holiday schedule for %d: working days are provisional (weekends and %s only); "
        "enter the State Council schedule in %s and mark the year 'official: true'",
        year,
        fixed,
        DEFAULT_PATH.name,
    )


def _fingerprint(overrides: _Overrides) -> str:
    """Hash everything a day's status or note is derived from, in a canonical order."""
    h = hashlib.sha256()
    h.update(f"rules={_RULES_VERSION};fixed={sorted(FIXED_HOLIDAYS.items())}\n".encode())
    for table, data in (("pkg-h", _PKG_HOLIDAYS), ("pkg-w", _PKG_WORKDAYS)):
        for day in sorted(data):
            h.update(f"{table} {day.isoformat()} {data[day]}\n".encode())
    for day in sorted(overrides.days):
        working, note = overrides.days[day]
        h.update(f"file {day.isoformat()} {int(working)} {note}\n".encode())
    for year in sorted(overrides.official):
        h.update(f"official {year} {int(overrides.official[year])}\n".encode())
    return h.hexdigest()[:12]


# --- reading the file ---------------------------------------------------------------------------


def _only_comments(text: str) -> bool:
    """True if the YAML has no content (parse_yaml calls an empty document an error)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped not in ("---", "..."):
            return False
    return True


class _Reader:
    """Checks a parsed calendar file, collecting every located problem."""

    def __init__(self, tree: Any, file: str) -> None:
        self.tree = tree
        self.file = file
        self.problems: list[Problem] = []
        self.days: dict[dt.date, tuple[bool, str]] = {}
        self.where: dict[dt.date, tuple[str, int]] = {}  # date → (list it came from, line), for conflicts
        self.official: dict[int, bool] = {}

    def add(self, path: tuple[Any, ...], message: str, *, key: bool = False) -> None:
        line, col = locate(self.tree, path, key=key)
        self.problems.append(Problem(self.file, line, col, message))

    def read(self) -> _Overrides:
        if self.tree is None:
            return _Overrides()
        if not isinstance(self.tree, LocDict):
            self.add((), "a calendar file is a mapping of years, e.g. '2027:' with 'holidays:' and 'workdays:' below")
            return _Overrides()
        for year_key, block in self.tree.items():
            self.read_year(year_key, block)
        return _Overrides(days=self.days, official=self.official)

    def read_year(self, year_key: str, block: Any) -> None:
        if not re.fullmatch(r"\d{4}", year_key):
            self.add((year_key,), f"{year_key!r} is not a year; top-level keys are years such as 2027", key=True)
            return
        year = int(year_key)
        if block is None:
            return
        if not isinstance(block, LocDict):
            self.add((year_key,), f"year {year} must be a mapping with 'holidays:', 'workdays:' or 'official:'")
            return
        for key in block:
            if key not in _YEAR_KEYS:
                self.add((year_key, key), f"unknown key {key!r} under {year}{did_you_mean(key, _YEAR_KEYS)}", key=True)
        if "official" in block:
            value = block["official"]
            if isinstance(value, bool):
                self.official[year] = value
            else:
                self.add((year_key, "official"), f"'official' must be true or false, not {value!r}")
        for kind in ("holidays", "workdays"):
            self.read_list(year, year_key, kind, block.get(kind))

    def read_list(self, year: int, year_key: str, kind: str, items: Any) -> None:
        if items is None:
            return
        path = (year_key, kind)
        if not isinstance(items, LocList):
            self.add(path, f"'{kind}' must be a list of dates (- 2027-01-01) or ranges (- {{from: D, to: D}})")
            return
        for i, item in enumerate(items):
            self.read_item(year, (*path, i), kind, item)

    def read_item(self, year: int, path: tuple[Any, ...], kind: str, item: Any) -> None:
        name = ""
        if isinstance(item, LocDict):
            allowed = _RANGE_KEYS[kind]
            bad = [k for k in item if k not in allowed]
            for k in bad:
                self.add((*path, k), f"unknown key {k!r} in a range under '{kind}'{did_you_mean(k, allowed)}", key=True)
            if "from" not in item:
                self.add(path, f"a range under '{kind}' needs 'from:' (and 'to:' unless it is one day)")
            if bad or "from" not in item:
                return
            first = self.date(year, (*path, "from"), item["from"])
            last = self.date(year, (*path, "to"), item["to"]) if "to" in item else first
            if "name" in item:
                if isinstance(item["name"], str) and item["name"].strip():
                    name = item["name"].strip()
                else:
                    self.add((*path, "name"), f"'name' must be text such as 国庆节, not {item['name']!r}")
            if first is None or last is None:
                return
            if last < first:
                self.add((*path, "to"), f"range ends ({last}) before it starts ({first}); swap 'from' and 'to'")
                return
        else:
            first = last = self.date(year, path, item)
            if first is None or last is None:
                return
        line = locate(self.tree, path)[0]
        day = first
        while day <= last:
            self.put(path, kind, line, day, name)
            day += dt.timedelta(days=1)

    def put(self, path: tuple[Any, ...], kind: str, line: int, day: dt.date, name: str) -> None:
        seen = self.where.get(day)
        if seen is not None and seen[0] != kind:
            self.add(path, f"{day} is listed under both '{seen[0]}' (line {seen[1]}) and '{kind}'; keep one")
            return
        if seen is not None:
            return  # listed twice in the same list: harmless, the first name stays
        self.where[day] = (kind, line)
        if kind == "workdays":
            self.days[day] = (True, _WORKDAY_NOTE)
        else:
            package_name = _PKG_HOLIDAYS.get(day)
            note = name or (_package_note(package_name) if package_name else _HOLIDAY_NOTE)
            self.days[day] = (False, note)

    def date(self, year: int, path: tuple[Any, ...], value: Any) -> dt.date | None:
        if not isinstance(value, str) or not _DATE_RE.match(value):
            self.add(path, f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. {year}-10-01")
            return None
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            self.add(path, f"{value} is not a real date (no such day in the calendar)")
            return None
        if day.year != year:
            self.add(path, f"{value} is listed under {year}; move it to the {day.year} block")
            return None
        return day


def _parse_file(raw: bytes, file: str) -> _Overrides:
    """Parse and check the calendar file.

    Raises:
        InputError: with one ``FILE:LINE:COL: message`` line per problem.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # let parse_yaml word the error, located
    if text is not None and _only_comments(text):
        return _Overrides()
    try:
        tree = parse_yaml(raw, file)
    except ParseFailed as exc:
        raise _input_error(exc.problems) from None
    reader = _Reader(tree, file)
    overrides = reader.read()
    if reader.problems:
        raise _input_error(reader.problems)
    return overrides


def _input_error(problems: list[Problem]) -> InputError:
    ordered = sorted(problems)
    n = len(ordered)
    head = f"{n} problem{'s' if n != 1 else ''} in calendar file"
    return InputError(head + ":\n" + "\n".join(str(p) for p in ordered))
