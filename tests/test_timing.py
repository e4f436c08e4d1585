"""dripper.timing: durations, calendar arithmetic in a lead's zone, send windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dripper.campaign.timing import Duration, Window, parse_days, parse_hours

CHICAGO = ZoneInfo("America/Chicago")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
UTC = UTC
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


# --- Duration.parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0d", Duration()),
        (0, Duration()),
        ("36h", Duration(seconds=36 * 3600)),
        ("2w", Duration(days=14)),
        ("3mo", Duration(months=3)),
        ("1w2d", Duration(days=9)),
        ("90min", Duration(seconds=90 * 60)),
        ("1mo2w", Duration(months=1, days=14)),
        (" 2W ", Duration(days=14)),
        ("45s", Duration(seconds=45)),
    ],
)
def test_duration_parse(text: object, expected: Duration) -> None:
    assert Duration.parse(text) == expected


def test_duration_parse_distinguishes_months_and_minutes() -> None:
    assert Duration.parse("3mo") != Duration.parse("3min")
    assert Duration.parse("3min") == Duration(seconds=180)


def test_duration_3m_is_ambiguous_and_says_mo_or_min() -> None:
    with pytest.raises(ValueError) as info:
        Duration.parse("3m")
    message = str(info.value)
    assert "'3m'" in message
    assert "mo" in message and "min" in message
    assert "ambiguous" in message


@pytest.mark.parametrize("text", ["x", "", "   ", "-1d", "-2w", "5", "2x", "1d x", "1.5d", "d", None, "two weeks"])
def test_duration_parse_rejects(text: object) -> None:
    with pytest.raises(ValueError) as info:
        Duration.parse(text)
    message = str(info.value)
    assert "bad duration" in message
    assert "0d" in message and "3mo" in message  # shows how to write one


def test_duration_non_m_error_has_no_m_hint() -> None:
    with pytest.raises(ValueError) as info:
        Duration.parse("2x")
    assert "ambiguous" not in str(info.value)


# --- Duration.add_to ----------------------------------------------------------------------


def test_months_are_calendar_months_clamped_to_month_end() -> None:
    start = local(CHICAGO, 2026, 1, 31, 9, 0)
    due = Duration.parse("1mo").add_to(start, CHICAGO)
    assert due.astimezone(CHICAGO) == local(CHICAGO, 2026, 2, 28, 9, 0)
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0)


def test_months_clamp_in_a_leap_year_and_across_years() -> None:
    assert Duration.parse("1mo").add_to(local(CHICAGO, 2028, 1, 31, 9), CHICAGO).astimezone(CHICAGO) == local(
        CHICAGO, 2028, 2, 29, 9
    )
    assert Duration.parse("3mo").add_to(local(CHICAGO, 2026, 11, 30, 9), CHICAGO).astimezone(CHICAGO) == local(
        CHICAGO, 2027, 2, 28, 9
    )
    assert Duration.parse("3mo").add_to(local(CHICAGO, 2026, 1, 31, 9), CHICAGO).astimezone(CHICAGO) == local(
        CHICAGO, 2026, 4, 30, 9
    )


def test_two_weeks_across_us_dst_change_keeps_local_wall_clock_time() -> None:
    # DST starts in the US on Sunday 2026-03-08: CST (-6) -> CDT (-5).
    start = local(CHICAGO, 2026, 3, 2, 9, 0)  # Monday 09:00 CST = 15:00 UTC
    assert start.astimezone(UTC).hour == 15
    due = Duration.parse("2w").add_to(start, CHICAGO)
    assert due.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 3, 16, 9, 0)
    assert due == datetime(2026, 3, 16, 14, 0, tzinfo=UTC)  # 09:00 CDT
    # the elapsed time is one hour short of 14 days
    assert due - start == timedelta(days=14, hours=-1)


def test_two_weeks_across_fall_back_keeps_local_wall_clock_time() -> None:
    start = local(CHICAGO, 2026, 10, 26, 9, 0)  # CDT
    due = Duration.parse("2w").add_to(start, CHICAGO)
    assert due.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 11, 9, 9, 0)  # CST
    assert due - start == timedelta(days=14, hours=1)


def test_hours_are_elapsed_time_across_dst() -> None:
    start = datetime(2026, 3, 7, 16, 0, tzinfo=UTC)  # Saturday 10:00 CST
    due = Duration.parse("24h").add_to(start, CHICAGO)
    assert due - start == timedelta(hours=24)
    assert due.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 3, 8, 11, 0)  # 11:00 CDT
    # whereas one calendar day keeps 10:00 local
    day = Duration.parse("1d").add_to(start, CHICAGO)
    assert day.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 3, 8, 10, 0)
    assert day - start == timedelta(hours=23)


def test_hours_are_elapsed_time_when_start_is_given_in_local_time() -> None:
    start = local(CHICAGO, 2026, 3, 7, 10, 0)
    due = Duration.parse("24h").add_to(start, CHICAGO)
    assert due - start == timedelta(hours=24)
    assert due == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)


def test_hours_part_of_a_mixed_duration_is_elapsed_time() -> None:
    start = datetime(2026, 3, 7, 5, 0, tzinfo=UTC)  # Friday 23:00 CST
    one_day = Duration.parse("1d").add_to(start, CHICAGO)
    assert one_day.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 3, 7, 23, 0)  # Saturday 23:00 CST
    due = Duration.parse("1d6h").add_to(start, CHICAGO)
    assert due - one_day == timedelta(hours=6)
    assert due == datetime(2026, 3, 8, 11, 0, tzinfo=UTC)


def test_zero_duration_is_the_same_instant() -> None:
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert Duration.parse("0d").add_to(start, CHICAGO) == start


def test_add_to_uses_the_zone_given_not_the_start_offset() -> None:
    # 2026-01-31 23:30 UTC is already Feb 1 in Tokyo but still Jan 31 in Chicago.
    start = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    in_chicago = Duration.parse("1mo").add_to(start, CHICAGO).astimezone(CHICAGO)
    in_tokyo = Duration.parse("1mo").add_to(start, TOKYO).astimezone(TOKYO)
    assert (in_chicago.month, in_chicago.day) == (2, 28)
    assert (in_tokyo.month, in_tokyo.day) == (3, 1)


# --- parse_days / parse_hours ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri", {MON, TUE, WED, THU, FRI}),
        ("fri-mon", {FRI, SAT, SUN, MON}),
        ("mon,wed,fri", {MON, WED, FRI}),
        ("sat-sun", {SAT, SUN}),
        ("mon-sun", set(range(7))),
        ("Mon-Fri", {MON, TUE, WED, THU, FRI}),
        ("monday-friday", {MON, TUE, WED, THU, FRI}),
        ("tue", {TUE}),
        (["mon", "wed-thu"], {MON, WED, THU}),
        ("sun-tue", {SUN, MON, TUE}),
    ],
)
def test_parse_days(text: object, expected: set[int]) -> None:
    assert parse_days(text) == frozenset(expected)


@pytest.mark.parametrize("text", ["", "xyz", "mon-xyz", "funday", "mon,,fri", "1-5"])
def test_parse_days_errors(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_days(text)
    assert "bad days" in str(info.value)
    assert "mon-fri" in str(info.value)


@pytest.mark.parametrize("text", ["mon;fri", "mon fri", "monkey", "mon-fridge"])
def test_parse_days_rejects_words_that_only_start_with_a_day_name(text: str) -> None:
    with pytest.raises(ValueError, match="bad days"):
        parse_days(text)


def test_parse_hours() -> None:
    assert parse_hours("09:00-17:00") == (time(9), time(17))
    assert parse_hours(" 8:30 - 12:15 ") == (time(8, 30), time(12, 15))
    assert parse_hours("00:00-24:00") == (time(0), None)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("17:00-09:00", "end after it starts"),
        ("09:00-09:00", "end after it starts"),
        ("25:00-26:00", "between 00:00 and 24:00"),
        ("09:60-10:00", "between 00:00 and 24:00"),
        ("09:00-24:30", "between 00:00 and 24:00"),
        ("nine-five", "09:00-17:00"),
        ("9-17", "09:00-17:00"),
        ("", "09:00-17:00"),
    ],
)
def test_parse_hours_errors(text: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_hours(text)
    assert "bad hours" in str(info.value)
    assert words in str(info.value)


# --- Window.next_open -------------------------------------------------------------------

OFFICE = Window(parse_days("mon-fri"), time(9), time(17))
OFFICE_HOLIDAYS = Window(parse_days("mon-fri"), time(9), time(17), skip_holidays=True)


def test_before_opening_moves_to_opening_the_same_day() -> None:
    instant = local(CHICAGO, 2026, 1, 6, 7, 15)  # Tuesday
    assert OFFICE.next_open(instant, CHICAGO) == local(CHICAGO, 2026, 1, 6, 9, 0)


def test_inside_the_window_is_unchanged() -> None:
    instant = local(CHICAGO, 2026, 1, 6, 10, 30)
    assert OFFICE.next_open(instant, CHICAGO) == instant
    opening = local(CHICAGO, 2026, 1, 6, 9, 0)
    assert OFFICE.next_open(opening, CHICAGO) == opening


def test_after_close_moves_to_the_next_open_day() -> None:
    assert OFFICE.next_open(local(CHICAGO, 2026, 1, 6, 18, 0), CHICAGO) == local(CHICAGO, 2026, 1, 7, 9, 0)
    # the closing minute itself is outside [09:00, 17:00)
    assert OFFICE.next_open(local(CHICAGO, 2026, 1, 6, 17, 0), CHICAGO) == local(CHICAGO, 2026, 1, 7, 9, 0)


def test_friday_evening_moves_to_monday_0900_local() -> None:
    friday = local(CHICAGO, 2026, 1, 9, 18, 0)
    result = OFFICE.next_open(friday, CHICAGO)
    assert result == local(CHICAGO, 2026, 1, 12, 9, 0)
    assert result.astimezone(CHICAGO).weekday() == MON


@pytest.mark.parametrize("day", [10, 11])  # Saturday, Sunday
def test_weekend_moves_to_monday(day: int) -> None:
    assert OFFICE.next_open(local(CHICAGO, 2026, 1, day, 12, 0), CHICAGO) == local(CHICAGO, 2026, 1, 12, 9, 0)


def test_weekend_across_dst_lands_on_monday_0900_new_offset() -> None:
    result = OFFICE.next_open(local(CHICAGO, 2026, 3, 6, 18, 0), CHICAGO)  # Friday before DST
    assert result.astimezone(CHICAGO).replace(tzinfo=None) == datetime(2026, 3, 9, 9, 0)
    assert result == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


def test_instant_given_in_utc_is_judged_on_the_local_clock() -> None:
    # Tuesday 2026-01-06 02:00 UTC is Monday 20:00 in Chicago: closed, next is Tuesday 09:00 local.
    result = OFFICE.next_open(datetime(2026, 1, 6, 2, 0, tzinfo=UTC), CHICAGO)
    assert result == local(CHICAGO, 2026, 1, 6, 9, 0)


def test_weekend_window_wraparound() -> None:
    weekend = Window(parse_days("fri-mon"), time(10), time(12))
    # Tuesday 11:00 -> Friday 10:00
    assert weekend.next_open(local(CHICAGO, 2026, 1, 6, 11, 0), CHICAGO) == local(CHICAGO, 2026, 1, 9, 10, 0)
    # Sunday 11:00 is open
    sunday = local(CHICAGO, 2026, 1, 11, 11, 0)
    assert weekend.next_open(sunday, CHICAGO) == sunday
    # Monday 13:00 -> Friday 10:00
    assert weekend.next_open(local(CHICAGO, 2026, 1, 12, 13, 0), CHICAGO) == local(CHICAGO, 2026, 1, 16, 10, 0)


def test_until_midnight_window() -> None:
    evening = Window(parse_days("mon-sun"), time(18), None)
    assert evening.next_open(local(CHICAGO, 2026, 1, 6, 23, 59), CHICAGO) == local(CHICAGO, 2026, 1, 6, 23, 59)
    assert evening.next_open(local(CHICAGO, 2026, 1, 6, 12, 0), CHICAGO) == local(CHICAGO, 2026, 1, 6, 18, 0)


def test_any_time_window_is_unchanged() -> None:
    instant = local(CHICAGO, 2026, 1, 10, 3, 0)
    assert Window().always
    assert Window().next_open(instant, CHICAGO) == instant


def test_holidays_skip_us_thanksgiving() -> None:
    thanksgiving = local(CHICAGO, 2026, 11, 26, 10, 0)  # Thursday
    assert OFFICE_HOLIDAYS.next_open(thanksgiving, CHICAGO, "US") == local(CHICAGO, 2026, 11, 27, 9, 0)
    # the evening before also skips the holiday
    assert OFFICE_HOLIDAYS.next_open(local(CHICAGO, 2026, 11, 25, 18, 0), CHICAGO, "US") == local(
        CHICAGO, 2026, 11, 27, 9, 0
    )


def test_holidays_only_when_asked() -> None:
    thanksgiving = local(CHICAGO, 2026, 11, 26, 10, 0)
    assert OFFICE.next_open(thanksgiving, CHICAGO, "US") == thanksgiving


def test_holidays_depend_on_the_country() -> None:
    thanksgiving = local(CHICAGO, 2026, 11, 26, 10, 0)
    # not a German holiday; no country -> no holidays
    assert OFFICE_HOLIDAYS.next_open(thanksgiving, CHICAGO, "DE") == thanksgiving
    assert OFFICE_HOLIDAYS.next_open(thanksgiving, CHICAGO, None) == thanksgiving


def test_holidays_german_christmas_days() -> None:
    every_day = Window(parse_days("mon-sun"), time(9), time(17), skip_holidays=True)
    christmas_eve = local(BERLIN, 2026, 12, 24, 18, 0)
    # Germany: 25 and 26 December are both public holidays
    assert every_day.next_open(christmas_eve, BERLIN, "DE") == local(BERLIN, 2026, 12, 27, 9, 0)
    assert every_day.next_open(local(BERLIN, 2026, 12, 26, 12, 0), BERLIN, "DE") == local(BERLIN, 2026, 12, 27, 9, 0)
    assert every_day.next_open(christmas_eve, BERLIN, "de") == local(BERLIN, 2026, 12, 27, 9, 0)
    # the US has only the 25th
    assert every_day.next_open(christmas_eve, BERLIN, "US") == local(BERLIN, 2026, 12, 26, 9, 0)


def test_holidays_with_office_window_in_germany() -> None:
    # Thursday 24 Dec evening: Fri 25 and Sat 26 closed (holiday, weekend), Sunday weekend -> Monday 28th
    assert OFFICE_HOLIDAYS.next_open(local(BERLIN, 2026, 12, 24, 18, 0), BERLIN, "DE") == local(
        BERLIN, 2026, 12, 28, 9, 0
    )


def test_window_in_asia_tokyo() -> None:
    # Monday 2026-01-05 08:00 UTC = 17:00 JST: closed -> Tuesday 09:00 JST = Monday 24:00 UTC
    result = OFFICE.next_open(datetime(2026, 1, 5, 8, 0, tzinfo=UTC), TOKYO)
    assert result == local(TOKYO, 2026, 1, 6, 9, 0)
    assert result == datetime(2026, 1, 6, 0, 0, tzinfo=UTC)
    # Sunday 23:30 UTC = Monday 08:30 JST -> Monday 09:00 JST
    assert OFFICE.next_open(datetime(2026, 1, 4, 23, 30, tzinfo=UTC), TOKYO) == local(TOKYO, 2026, 1, 5, 9, 0)
    # Monday 01:00 UTC = Monday 10:00 JST: open (while it would be Sunday night in Chicago)
    inside = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    assert OFFICE.next_open(inside, TOKYO) == inside
    assert OFFICE.next_open(inside, CHICAGO) != inside


def test_tokyo_friday_evening_with_japanese_holiday() -> None:
    # Friday 2026-01-09 18:00 JST; Monday 12 Jan is Coming of Age Day in Japan.
    friday = local(TOKYO, 2026, 1, 9, 18, 0)
    assert OFFICE.next_open(friday, TOKYO, "JP") == local(TOKYO, 2026, 1, 12, 9, 0)
    assert OFFICE_HOLIDAYS.next_open(friday, TOKYO, "JP") == local(TOKYO, 2026, 1, 13, 9, 0)


def test_next_open_result_is_never_before_the_instant() -> None:
    start = local(CHICAGO, 2026, 3, 1, 0, 0)
    for hours in range(0, 24 * 14, 5):
        instant = start + timedelta(hours=hours)
        result = OFFICE.next_open(instant, CHICAGO)
        assert result >= instant
        opened = result.astimezone(CHICAGO)
        assert opened.weekday() in OFFICE.days
        assert time(9) <= opened.time() < time(17)


def test_holiday_dates_are_real_dates() -> None:  # sanity of the holiday source used above
    from dripper.campaign.timing import is_holiday

    assert is_holiday("US", date(2026, 11, 26))
    assert is_holiday("DE", date(2026, 12, 26))
    assert not is_holiday("US", date(2026, 12, 26))
    assert not is_holiday(None, date(2026, 12, 25))
