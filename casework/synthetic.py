"""Seeded, realistic synthetic people and hardship households for Zhangzhou.

The data is meant for demos, benchmarks and tests. It looks like what a
trade-union clerk in Zhangzhou, Fujian would enter for a hardship
(困难职工) archive: Chinese names weighted towards the surnames common in
southern Fujian, valid 18-digit resident ID numbers registered in one of
Zhangzhou's county-level divisions, and plausible household details.

Every value is drawn from a private :class:`random.Random` seeded by the
caller, so the same seed always gives the same sequence of records. The
generator does only a handful of cheap random draws per record, so a million
households take seconds, not minutes.

Example:
    >>> people = SyntheticPeople(seed=42)
    >>> record = people.household()
    >>> sorted(record)[:3]
    ['applicant_name', 'cause', 'county']

No real person is described: any resemblance of a generated name and ID
number to a real one is coincidence.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import random
from typing import Any, TypeVar

from engine.idnumber import check_digit

__all__ = ["ZHANGZHOU_COUNTIES", "SyntheticPeople"]

#: Zhangzhou's 11 current county-level divisions and their 6-digit
#: administrative division codes (GB/T 2260). 龙海 and 长泰 became districts
#: in 2021 (codes 350604 and 350605).
ZHANGZHOU_COUNTIES: dict[str, str] = {
    "芗城区": "350602",
    "龙文区": "350603",
    "龙海区": "350604",
    "长泰区": "350605",
    "云霄县": "350622",
    "漳浦县": "350623",
    "诏安县": "350624",
    "东山县": "350626",
    "南靖县": "350627",
    "平和县": "350628",
    "华安县": "350629",
}

# Common single-character surnames with rough relative weights, skewed
# towards the surnames most frequent in southern Fujian (闽南).
_SURNAMES: tuple[tuple[str, float], ...] = (
    ("陈", 12.0), ("林", 11.0), ("黄", 7.0), ("张", 5.0), ("吴", 4.5),
    ("李", 4.5), ("王", 4.0), ("郑", 3.5), ("蔡", 3.0), ("杨", 3.0),
    ("许", 2.5), ("刘", 2.5), ("曾", 2.0), ("郭", 2.0), ("沈", 1.8),
    ("洪", 1.8), ("周", 1.6), ("卢", 1.5), ("苏", 1.5), ("叶", 1.5),
    ("何", 1.4), ("庄", 1.4), ("戴", 1.3), ("徐", 1.3), ("方", 1.2),
    ("江", 1.2), ("朱", 1.2), ("赖", 1.1), ("谢", 1.1), ("邱", 1.0),
    ("高", 1.0), ("柯", 1.0), ("游", 0.9), ("施", 0.9), ("蒋", 0.8),
    ("钟", 0.8), ("韩", 0.7), ("孙", 0.7), ("胡", 0.7), ("余", 0.7),
    ("杜", 0.6), ("魏", 0.6), ("唐", 0.6), ("汤", 0.6), ("潘", 0.6),
    ("姚", 0.5), ("马", 0.5), ("罗", 0.5), ("彭", 0.5), ("赵", 0.5),
    ("涂", 0.5), ("薛", 0.4), ("田", 0.4), ("邓", 0.4), ("汪", 0.4),
    ("詹", 0.4), ("钱", 0.3), ("袁", 0.3), ("董", 0.3), ("梁", 0.3),
)  # fmt: skip

# Compound surnames, rare: together about 0.5 % of all names.
_COMPOUND_SURNAMES: tuple[str, ...] = ("欧阳", "司马", "上官", "诸葛", "东方")
_COMPOUND_RATE = 0.005

# Given-name characters, split by the gender they usually suggest; the
# neutral ones are used for both.
_GIVEN_MALE = (
    "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新"
    "利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐"
)
_GIVEN_FEMALE = (
    "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香"
    "月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓"
)
_GIVEN_NEUTRAL = "金建晓水晨宇阳"

_GIVEN_BY_GENDER: dict[bool, str] = {
    False: _GIVEN_MALE + _GIVEN_NEUTRAL,
    True: _GIVEN_FEMALE + _GIVEN_NEUTRAL,
}

# Share of full names with a one-character given name (e.g. 陈伟).
_SINGLE_GIVEN_RATE = 0.25

_HOUSEHOLD_TYPES: tuple[str, ...] = ("低保户", "低保边缘户", "意外致困户")
_HOUSEHOLD_TYPE_WEIGHTS: tuple[float, ...] = (0.5, 0.3, 0.2)

_HOUSEHOLD_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
_HOUSEHOLD_SIZE_WEIGHTS: tuple[float, ...] = (0.10, 0.20, 0.32, 0.22, 0.11, 0.05)

_CAUSES: tuple[str, ...] = (
    "本人重病",
    "家庭成员重病",
    "子女就学",
    "因灾致困",
    "下岗失业",
    "家庭成员残疾",
    "本人残疾",
    "单亲家庭",
    "意外事故",
    "赡养老人负担重",
)
_CAUSE_WEIGHTS: tuple[float, ...] = (18, 14, 14, 6, 12, 10, 6, 8, 6, 6)

_MATERIALS: tuple[str, ...] = ("申请表", "身份证", "户口簿", "收入证明")
_COMPLETE_MATERIALS_RATE = 0.9

_PHONE_PREFIXES: tuple[str, ...] = ("13", "15", "18")

# Income per capita is drawn in fen (cents): 300.00-1200.00 yuan inclusive.
_INCOME_MIN_FEN = 300_00
_INCOME_MAX_FEN = 1200_00

_DEFAULT_BORN_BETWEEN = (datetime.date(1950, 1, 1), datetime.date(2004, 12, 31))


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    """Return cumulative weights normalised so the last one is 1.0."""
    running = list(itertools.accumulate(weights))
    total = running[-1]
    return [w / total for w in running]


_SURNAME_CHARS = tuple(s for s, _ in _SURNAMES)
_SURNAME_CUM = _cumulative(tuple(w for _, w in _SURNAMES))
_HOUSEHOLD_TYPE_CUM = _cumulative(_HOUSEHOLD_TYPE_WEIGHTS)
_HOUSEHOLD_SIZE_CUM = _cumulative(_HOUSEHOLD_SIZE_WEIGHTS)
_CAUSE_CUM = _cumulative(_CAUSE_WEIGHTS)
_COUNTY_NAMES = tuple(ZHANGZHOU_COUNTIES)


_T = TypeVar("_T")


def _pick(rng: random.Random, items: tuple[_T, ...], cum: list[float]) -> _T:
    """Pick one of ``items`` with cumulative probabilities ``cum``."""
    # min() guards against float rounding leaving the last bound below 1.0.
    return items[min(bisect.bisect_right(cum, rng.random()), len(items) - 1)]


class SyntheticPeople:
    """A deterministic generator of synthetic people and households.

    Each instance owns a :class:`random.Random` seeded with ``seed``; two
    instances with the same seed produce the same values when their methods
    are called in the same order.

    Args:
        seed: Seed for the instance's random number generator.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        # Birth-date digits (YYYYMMDD) by date ordinal, filled lazily: the
        # same few tens of thousands of dates recur across a million records.
        self._date_digits: dict[int, str] = {}
        # A household is filed once (real-name management): one generator never
        # repeats an ID number, or a million records would collide by chance.
        self._issued: set[str] = set()

    def county(self) -> str:
        """Return the name of a Zhangzhou county-level division, e.g. ``"漳浦县"``.

        Returns:
            One of the keys of :data:`ZHANGZHOU_COUNTIES`, chosen uniformly.
        """
        return _COUNTY_NAMES[int(self._rng.random() * len(_COUNTY_NAMES))]

    def name(self) -> str:
        """Return a Chinese full name, e.g. ``"林秀英"`` or ``"陈伟"``.

        Surnames are weighted by how common they are in southern Fujian, with
        the compound surnames 欧阳, 司马, 上官, 诸葛 and 东方 at a low rate.
        About a quarter of names have a one-character given name.

        Returns:
            The full name, surname first.
        """
        return self._name(self._rng.random() < 0.5)

    def id_number(
        self,
        county: str | None = None,
        born_between: tuple[datetime.date, datetime.date] = _DEFAULT_BORN_BETWEEN,
    ) -> str:
        """Return a valid 18-digit resident ID number registered in Zhangzhou.

        Args:
            county: Name of a Zhangzhou county-level division (a key of
                :data:`ZHANGZHOU_COUNTIES`); a random one if ``None``.
            born_between: Earliest and latest birth date, both inclusive.

        Returns:
            An ID number with the county's code, a real birth date in the
            range, a random 3-digit sequence code and the correct check
            character.

        Raises:
            ValueError: If ``county`` is not a Zhangzhou division or
                ``born_between`` is empty or starts before 1900-01-01.
        """
        return self._id_number(county, born_between, self._rng.random() < 0.5)

    def household(self) -> dict[str, Any]:
        """Return one hardship household, ready to be case data.

        The applicant's given name matches the gender encoded in the ID
        number, and the ID number is registered in the household's county.

        Returns:
            A new dict with keys ``applicant_name``, ``id_number``,
            ``household_type`` (低保户, 低保边缘户 or 意外致困户), ``county``,
            ``household_size`` (int, 1-6), ``income_per_capita`` (monthly
            yuan as a string with 2 decimal places, 300.00-1200.00),
            ``cause`` (short Chinese text), ``materials`` (list of documents
            supplied; usually all of 申请表, 身份证, 户口簿, 收入证明 in that
            order, sometimes one is missing) and ``phone`` (11-digit mobile
            number starting 13, 15 or 18).
        """
        rng = self._rng
        female = rng.random() < 0.5
        county = self.county()
        fen = rng.randint(_INCOME_MIN_FEN, _INCOME_MAX_FEN)
        if rng.random() < _COMPLETE_MATERIALS_RATE:
            materials = list(_MATERIALS)
        else:
            missing = int(rng.random() * len(_MATERIALS))
            materials = [m for i, m in enumerate(_MATERIALS) if i != missing]
        return {
            "applicant_name": self._name(female),
            "id_number": self._id_number(county, _DEFAULT_BORN_BETWEEN, female),
            "household_type": _pick(rng, _HOUSEHOLD_TYPES, _HOUSEHOLD_TYPE_CUM),
            "county": county,
            "household_size": _pick(rng, _HOUSEHOLD_SIZES, _HOUSEHOLD_SIZE_CUM),
            "income_per_capita": f"{fen // 100}.{fen % 100:02d}",
            "cause": _pick(rng, _CAUSES, _CAUSE_CUM),
            "materials": materials,
            "phone": f"{_PHONE_PREFIXES[int(rng.random() * 3)]}{int(rng.random() * 1e9):09d}",
        }

    def _name(self, female: bool) -> str:
        """Return a full name whose given name suits the gender."""
        rng = self._rng
        if rng.random() < _COMPOUND_RATE:
            surname = _COMPOUND_SURNAMES[int(rng.random() * len(_COMPOUND_SURNAMES))]
        else:
            surname = _pick(rng, _SURNAME_CHARS, _SURNAME_CUM)
        chars = _GIVEN_BY_GENDER[female]
        n = len(chars)
        given = chars[int(rng.random() * n)]
        if rng.random() >= _SINGLE_GIVEN_RATE:
            given += chars[int(rng.random() * n)]
        return surname + given

    def _id_number(
        self,
        county: str | None,
        born_between: tuple[datetime.date, datetime.date],
        female: bool,
    ) -> str:
        """Return an ID number whose 17th digit encodes the gender."""
        rng = self._rng
        if county is None:
            county = self.county()
        try:
            code = ZHANGZHOU_COUNTIES[county]
        except KeyError:
            raise ValueError(
                f"{county!r} is not a Zhangzhou county-level division; use one of {', '.join(ZHANGZHOU_COUNTIES)}"
            ) from None
        earliest, latest = born_between
        first, last = earliest.toordinal(), latest.toordinal()
        if first > last:
            raise ValueError(f"born_between is empty: {earliest} is after {latest}")
        if earliest.year < 1900:
            raise ValueError(f"born_between starts at {earliest}, before 1900-01-01")
        while True:
            ordinal = first + int(rng.random() * (last - first + 1))
            digits = self._date_digits.get(ordinal)
            if digits is None:
                digits = datetime.date.fromordinal(ordinal).strftime("%Y%m%d")
                self._date_digits[ordinal] = digits
            # Sequence code 000-999 with an even last digit for women, odd for men.
            sequence = int(rng.random() * 500) * 2 + (0 if female else 1)
            first17 = f"{code}{digits}{sequence:03d}"
            if first17 not in self._issued:
                self._issued.add(first17)
                return first17 + check_digit(first17)
