"""Business calendar for SLA clocks: weekly working intervals in a time zone, minus Brazilian
national holidays (from the maintained ``holidays`` package, never a hand-written list).

Pure functions, no database:

- ``business_deadline(start, minutes, calendar)``: the instant at which ``minutes`` of working time
  have passed since ``start``.
- ``business_minutes_between(a, b, calendar)``: working minutes in ``[a, b)``.

Naive datetimes are UTC (as everywhere in the project: the database stores naive UTC); a naive
argument gives a naive UTC result, an aware one an aware UTC result.

Holidays: ``holidays.Brazil`` "public" category (national holidays: Confraternização, Sexta-feira
Santa, Tiradentes, Dia do Trabalho, Independência, Aparecida, Finados, Proclamação da República,
Consciência Negra, Natal). Carnaval is not a national holiday but a federal "ponto facultativo";
the package lists it in its "optional" category (Carnival Monday and Tuesday, and Ash Wednesday).
Deliberate choice, configurable with ``carnival``: when on (the default), Carnival Monday and
Tuesday are not working days and Ash Wednesday starts at 14:00 (the federal rule: "ponto
facultativo até as 14 horas"), as most Brazilian businesses observe; when off, they are ordinary
days. Other optional days (Corpus Christi, Dia do Servidor, 24 and 31 December) are ordinary days.
State and city holidays are not counted.

Working time is counted in wall-clock minutes of the calendar's zone. America/Sao_Paulo has had no
daylight-saving time since 2019, so wall-clock and elapsed minutes agree there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from ..errors import InvalidInput

DEFAULT_TIMEZONE = "America/Sao_Paulo"
WEEKDAYS = ("seg", "ter", "qua", "qui", "sex", "sab", "dom")  # Monday = 0, as date.weekday()
WEEKDAY_LABELS = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")
ASH_WEDNESDAY_FROM = 14 * 3600  # seconds after midnight
MAX_SPAN_DAYS = 3660
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")

Interval = tuple[int, int]  # seconds after local midnight, start < end


@dataclass(frozen=True)
class Calendar:
    """A weekly working calendar. ``week[d]`` are the working intervals of weekday ``d``."""
    week: tuple[tuple[Interval, ...], ...]
    tz: str = DEFAULT_TIMEZONE
    carnival: bool = True
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.tz))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def day_intervals(self, day: date) -> tuple[Interval, ...]:
        return _day_intervals(self, day)

    def to_json(self) -> dict[str, Any]:
        return {WEEKDAYS[d]: [[_hhmm(a), _hhmm(b)] for a, b in self.week[d]] for d in range(7)}


def default_calendar() -> Calendar:
    """Monday to Friday, 08:00–18:00, America/Sao_Paulo, Carnaval observed (see the module docstring)."""
    workday = ((8 * 3600, 18 * 3600),)
    return Calendar(week=(workday,) * 5 + ((), ()))


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _parse_hhmm(value: Any, where: str) -> int:
    text = str(value or "").strip()
    if not _HHMM.match(text):
        raise InvalidInput(f"bad time {value!r} ({where})",
                           f"Horário inválido em {where}: \"{value}\". Use HH:MM, por exemplo 08:00.")
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def parse_calendar(week: Any, *, tz: Any = DEFAULT_TIMEZONE, carnival: Any = True) -> Calendar:
    """A Calendar from untrusted input: ``week`` maps "seg".."dom" to lists of ["HH:MM", "HH:MM"].

    Raises InvalidInput (pt-BR message) for an unknown zone, a malformed time, an interval that ends
    before it starts, overlapping intervals, or a week with no working hours at all."""
    if not isinstance(tz, str) or not tz or len(tz) > 64:
        raise InvalidInput(f"bad timezone {tz!r}", "Fuso horário inválido.")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown timezone {tz!r}", f"Fuso horário desconhecido: {tz}.") from None
    if not isinstance(week, dict):
        raise InvalidInput("week must be a mapping", "Calendário inválido.")
    unknown = set(week) - set(WEEKDAYS)
    if unknown:
        raise InvalidInput(f"unknown weekdays {sorted(map(str, unknown))}", "Calendário inválido: dia da semana desconhecido.")
    days: list[tuple[Interval, ...]] = []
    for d, key in enumerate(WEEKDAYS):
        raw = week.get(key) or []
        if not isinstance(raw, (list, tuple)) or len(raw) > 6:
            raise InvalidInput(f"bad intervals for {key}", f"Horários inválidos para {WEEKDAY_LABELS[d]}.")
        intervals = []
        for pair in raw:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InvalidInput(f"bad interval {pair!r}", f"Horários inválidos para {WEEKDAY_LABELS[d]}.")
            start, end = (_parse_hhmm(v, WEEKDAY_LABELS[d]) for v in pair)
            if end <= start:
                raise InvalidInput(f"interval {pair!r} ends before it starts",
                                   f"Em {WEEKDAY_LABELS[d]}, o fim ({pair[1]}) precisa ser depois do início ({pair[0]}).")
            intervals.append((start, end))
        intervals.sort()
        for (_, end1), (start2, _) in zip(intervals, intervals[1:]):
            if start2 < end1:
                raise InvalidInput(f"overlapping intervals on {key}",
                                   f"Em {WEEKDAY_LABELS[d]}, os horários se sobrepõem.")
        days.append(tuple(intervals))
    if not any(days):
        raise InvalidInput("calendar without working hours",
                           "O calendário precisa de pelo menos um horário de atendimento na semana.")
    return Calendar(week=tuple(days), tz=tz, carnival=bool(carnival))


@lru_cache(maxsize=256)
def _holidays_of(year: int, carnival: bool) -> tuple[frozenset[date], date | None]:
    """(non-working dates, Ash Wednesday if it is a half day) of a year."""
    closed = set(holidays.Brazil(years=year, categories=("public",)).keys())
    ash: date | None = None
    if carnival:
        optional = holidays.Brazil(years=year, categories=("optional",), language="en_US")
        for day, name in optional.items():
            if name == "Carnival":
                closed.add(day)
            elif name == "Ash Wednesday":
                ash = day
    return frozenset(closed), ash


def holiday_names(year: int, carnival: bool = True) -> list[tuple[date, str]]:
    """The year's non-working dates (and Ash Wednesday's half day) with pt-BR names, for the console."""
    closed, ash = _holidays_of(year, carnival)
    names = dict(holidays.Brazil(years=year, categories=("public", "optional"), language="pt_BR"))
    listed = [(day, names.get(day, "")) for day in sorted(closed)]
    if ash is not None:
        listed.append((ash, f"{names.get(ash, 'Quarta-feira de Cinzas')} (a partir das 14h)"))
    return sorted(listed)


def _day_intervals(cal: Calendar, day: date) -> tuple[Interval, ...]:
    closed, ash = _holidays_of(day.year, cal.carnival)
    if day in closed:
        return ()
    intervals = cal.week[day.weekday()]
    if day == ash:
        intervals = tuple((max(a, ASH_WEDNESDAY_FROM), b) for a, b in intervals if b > ASH_WEDNESDAY_FROM)
    return intervals


def _to_local(value: datetime, cal: Calendar) -> tuple[datetime, bool]:
    naive = value.tzinfo is None
    aware = value.replace(tzinfo=timezone.utc) if naive else value
    return aware.astimezone(cal.zone).replace(tzinfo=None), naive


def _from_local(day: date, seconds: float, cal: Calendar, naive: bool) -> datetime:
    local = datetime.combine(day, time()) + timedelta(seconds=seconds)
    utc = local.replace(tzinfo=cal.zone).astimezone(timezone.utc)
    return utc.replace(tzinfo=None) if naive else utc


def _seconds_of_day(local: datetime) -> float:
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def business_deadline(start: datetime, minutes: float, calendar: Calendar) -> datetime:
    """The instant ``minutes`` working minutes after ``start``. A target that ends exactly at the
    end of a working interval lands there (18:00), not at the next opening."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    local, naive = _to_local(start, calendar)
    day, at = local.date(), _seconds_of_day(local)
    remaining = minutes * 60.0
    for _ in range(MAX_SPAN_DAYS):
        for a, b in _day_intervals(calendar, day):
            if b <= at:
                continue
            begin = max(a, at)
            if remaining <= b - begin:
                return _from_local(day, begin + remaining, calendar, naive)
            remaining -= b - begin
        day, at = day + timedelta(days=1), 0.0
    raise ValueError("deadline beyond ten years")


def business_minutes_between(a: datetime, b: datetime, calendar: Calendar) -> float:
    """Working minutes in ``[a, b)``; 0 when ``b <= a``."""
    if b <= a:
        return 0.0
    la, _ = _to_local(a, calendar)
    lb, _ = _to_local(b, calendar)
    if (lb.date() - la.date()).days > MAX_SPAN_DAYS:
        raise ValueError("span beyond ten years")
    total = 0.0
    day = la.date()
    while day <= lb.date():
        lo = _seconds_of_day(la) if day == la.date() else 0.0
        hi = _seconds_of_day(lb) if day == lb.date() else 86400.0
        for s, e in _day_intervals(calendar, day):
            overlap = min(e, hi) - max(s, lo)
            if overlap > 0:
                total += overlap
        day += timedelta(days=1)
    return total / 60.0
