"""Business calendar: deadlines and business minutes over weekends, national holidays from the
``holidays`` package, Carnaval (Monday/Tuesday off, Ash Wednesday from 14:00), a DST-free zone and
targets spanning several days; bad calendars are refused with a pt-BR message."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from helpdesk.errors import InvalidInput
from helpdesk.services.sla_calendar import (
    business_deadline, business_minutes_between, default_calendar, holiday_names, parse_calendar,
)

CAL = default_calendar()  # Mon–Fri 08:00–18:00, America/Sao_Paulo, Carnaval observed


def brt(*args: int) -> datetime:
    """A São Paulo wall-clock time (UTC-3 since 2019) as the naive UTC the database stores."""
    return datetime(*args) + timedelta(hours=3)


def test_friday_17_50_before_carnaval_with_four_business_hours_lands_on_ash_wednesday_17_50() -> None:
    start = brt(2027, 2, 5, 17, 50)  # Friday before Carnaval 2027 (8 and 9 February)
    due = business_deadline(start, 240, CAL)
    # 10 min on Friday; weekend; Carnival Monday and Tuesday off; Ash Wednesday opens at 14:00,
    # 14:00 + 3h50 = 17:50
    assert due == brt(2027, 2, 10, 17, 50)
    assert business_minutes_between(start, due, CAL) == pytest.approx(240)
    # nothing counts on Carnival Monday/Tuesday or Ash Wednesday morning
    assert business_minutes_between(brt(2027, 2, 8, 0, 0), brt(2027, 2, 10, 14, 0), CAL) == 0


def test_carnaval_as_ordinary_days_when_the_calendar_does_not_observe_it() -> None:
    cal = parse_calendar(CAL.to_json(), carnival=False)
    assert business_deadline(brt(2027, 2, 5, 17, 50), 240, cal) == brt(2027, 2, 8, 11, 50)
    assert business_minutes_between(brt(2027, 2, 10, 8, 0), brt(2027, 2, 10, 18, 0), cal) == 600


def test_weekend_is_skipped_and_a_target_ending_at_closing_time_stays_there() -> None:
    assert business_deadline(brt(2027, 3, 5, 17, 0), 120, CAL) == brt(2027, 3, 8, 9, 0)  # Fri → Mon
    assert business_deadline(brt(2027, 3, 5, 17, 0), 60, CAL) == brt(2027, 3, 5, 18, 0)
    assert business_deadline(brt(2027, 3, 6, 10, 0), 30, CAL) == brt(2027, 3, 8, 8, 30)  # opened Saturday
    assert business_deadline(brt(2027, 3, 8, 6, 0), 60, CAL) == brt(2027, 3, 8, 9, 0)  # before opening
    assert business_minutes_between(brt(2027, 3, 5, 17, 0), brt(2027, 3, 8, 9, 0), CAL) == 120


def test_tiradentes_and_christmas_are_not_working_days_christmas_eve_is() -> None:
    # Tiradentes 2027 is Wednesday 21 April
    assert business_deadline(brt(2027, 4, 20, 17, 0), 120, CAL) == brt(2027, 4, 22, 9, 0)
    # Christmas 2026 is a Friday; 24 December is an ordinary working day
    assert business_deadline(brt(2026, 12, 24, 17, 0), 60, CAL) == brt(2026, 12, 24, 18, 0)
    assert business_deadline(brt(2026, 12, 24, 17, 0), 120, CAL) == brt(2026, 12, 28, 9, 0)
    assert business_minutes_between(brt(2026, 12, 25, 0, 0), brt(2026, 12, 26, 0, 0), CAL) == 0


def test_a_target_spanning_several_days() -> None:
    start = brt(2027, 3, 1, 8, 0)  # Monday
    assert business_deadline(start, 4 * 600, CAL) == brt(2027, 3, 4, 18, 0)
    assert business_deadline(start, 4 * 600 + 1, CAL) == brt(2027, 3, 5, 8, 1)
    # ten working days across Good Friday (26 March 2027): 4 + 5 + Monday 5 April
    assert business_deadline(brt(2027, 3, 22, 8, 0), 10 * 600, CAL) == brt(2027, 4, 5, 18, 0)
    assert business_minutes_between(brt(2027, 3, 22, 8, 0), brt(2027, 4, 5, 18, 0), CAL) == 6000


def test_sao_paulo_has_no_daylight_saving_so_times_do_not_shift() -> None:
    # early November used to start daylight saving time in São Paulo; since 2019 it stays UTC-3
    due = business_deadline(datetime(2027, 11, 5, 20, 0), 120, CAL)  # Friday 17:00 local
    assert due == datetime(2027, 11, 8, 12, 0)  # Monday 09:00 local is 12:00 UTC, not 11:00
    # in 2017 it still had DST (from 15 October, UTC-2): wall-clock business minutes are counted
    assert business_minutes_between(datetime(2017, 10, 13, 20, 0), datetime(2017, 10, 16, 11, 0), CAL) == 120
    assert business_deadline(datetime(2017, 10, 13, 20, 0), 120, CAL) == datetime(2017, 10, 16, 11, 0)


def test_aware_datetimes_give_aware_utc_results() -> None:
    start = datetime(2027, 3, 5, 20, 0, tzinfo=timezone.utc)
    due = business_deadline(start, 120, CAL)
    assert due.tzinfo is not None and due == datetime(2027, 3, 8, 12, 0, tzinfo=timezone.utc)


def test_lunch_break_calendar_and_reversed_spans() -> None:
    cal = parse_calendar({"seg": [["13:00", "18:00"], ["08:00", "12:00"]], "sab": [["09:00", "13:00"]]})
    assert business_deadline(brt(2027, 3, 1, 11, 30), 60, cal) == brt(2027, 3, 1, 13, 30)
    assert business_deadline(brt(2027, 3, 1, 17, 0), 120, cal) == brt(2027, 3, 6, 10, 0)  # next: Saturday
    assert business_minutes_between(brt(2027, 3, 1, 18, 0), brt(2027, 3, 1, 8, 0), cal) == 0


def test_deadline_and_minutes_are_inverse() -> None:
    rng = random.Random(16)
    for _ in range(300):
        start = datetime(2027, 1, 1) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        minutes = rng.randrange(1, 5000)
        due = business_deadline(start, minutes, CAL)
        assert business_minutes_between(start, due, CAL) == pytest.approx(minutes)
        assert business_minutes_between(start, due - timedelta(minutes=1), CAL) < minutes


def test_holiday_names_come_from_the_package_in_portuguese() -> None:
    names = dict(holiday_names(2027))
    assert names[datetime(2027, 4, 21).date()] == "Tiradentes"
    assert names[datetime(2027, 2, 8).date()] == "Carnaval"
    assert "14h" in names[datetime(2027, 2, 10).date()]
    assert datetime(2027, 11, 20).date() in names  # Consciência Negra, national since 2024
    assert datetime(2027, 2, 8).date() not in dict(holiday_names(2027, carnival=False))


@pytest.mark.parametrize(("week", "tz", "expected"), [
    ({}, "America/Sao_Paulo", "pelo menos um horário"),
    ({"seg": []}, "America/Sao_Paulo", "pelo menos um horário"),
    ({"seg": [["25:00", "26:00"]]}, "America/Sao_Paulo", "Horário inválido"),
    ({"seg": [["08:00", "08:00"]]}, "America/Sao_Paulo", "precisa ser depois"),
    ({"seg": [["18:00", "08:00"]]}, "America/Sao_Paulo", "precisa ser depois"),
    ({"seg": [["08:00", "12:00"], ["11:00", "13:00"]]}, "America/Sao_Paulo", "se sobrepõem"),
    ({"seg": [["8h", "12h"]]}, "America/Sao_Paulo", "Horário inválido"),
    ({"seg": [["08:00"]]}, "America/Sao_Paulo", "Horários inválidos"),
    ({"monday": [["08:00", "12:00"]]}, "America/Sao_Paulo", "dia da semana"),
    ({"seg": [["08:00", "12:00"]]}, "Mars/Olympus", "Fuso horário desconhecido"),
    ({"seg": [["08:00", "12:00"]]}, "../../etc/passwd", "Fuso horário"),
    ("seg 08-18", "America/Sao_Paulo", "Calendário inválido"),
])
def test_bad_calendars_are_refused(week: object, tz: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_calendar(week, tz=tz)
    assert expected in err.value.message_pt
