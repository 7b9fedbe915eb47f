"""Maintenance windows, pure: RDS's ``ddd:hh24:mi-ddd:hh24:mi`` (UTC) against a time, as a table.

The week below starts on Monday 2026-01-05 (the simulator's first day), so ``at("sun", "23:50")``
is Sunday 2026-01-11 23:50 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rds_force_ssl.facts import window

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
MARGIN = 300


def at(day: str, hhmm: str, seconds: int = 0, *, weeks: int = 0) -> float:
    hours, minutes = map(int, hhmm.split(":"))
    when = MONDAY + timedelta(
        days=window.DAYS.index(day) + 7 * weeks, hours=hours, minutes=minutes, seconds=seconds
    )
    return when.timestamp()


@pytest.mark.parametrize(
    ("text", "start", "end", "length"),
    [
        ("mon:00:00-mon:00:30", 0, 1800, 1800),
        ("Tue:03:15-Tue:04:00", 86400 + 3 * 3600 + 900, 86400 + 4 * 3600, 2700),
        # crosses midnight
        ("tue:23:30-wed:00:30", 86400 + 23.5 * 3600, 2 * 86400 + 1800, 3600),
        # crosses the end of the week: sun -> mon
        ("sun:23:45-mon:00:15", 6 * 86400 + 23.75 * 3600, 900, 1800),
    ],
)
def test_parse(text: str, start: float, end: int, length: int) -> None:
    w = window.parse(text)
    assert (w.start, w.end, w.length) == (int(start), end, length)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sun:05:00",
        "sun:05:00-",
        "xyz:05:00-sun:05:30",
        "sun:24:00-mon:00:30",
        "sun:5:0-sun:6:0",
        "sun:05:60-sun:06:30",
        "sun:05:00-sun:05:00",
    ],
)
def test_parse_refuses_what_rds_never_writes(text: str) -> None:
    with pytest.raises(ValueError, match="maintenance window"):
        window.parse(text)


# (window, run time, inside?, may a restart start there?)
CASES = [
    # an ordinary window: just before, at its start, inside, near its end, just after
    ("wed:04:00-wed:04:30", at("wed", "03:59", 59), False, False),
    ("wed:04:00-wed:04:30", at("wed", "04:00"), True, True),
    ("wed:04:00-wed:04:30", at("wed", "04:15"), True, True),
    ("wed:04:00-wed:04:30", at("wed", "04:25"), True, True),  # exactly the margin left
    ("wed:04:00-wed:04:30", at("wed", "04:25", 1), True, False),  # a restart would spill over
    ("wed:04:00-wed:04:30", at("wed", "04:30"), False, False),  # the end is not inside
    ("wed:04:00-wed:04:30", at("wed", "04:00", weeks=1), True, True),  # every week
    ("wed:04:00-wed:04:30", at("thu", "04:10"), False, False),  # same hour, other day
    # crossing 00:00
    ("tue:23:30-wed:00:30", at("tue", "23:29"), False, False),
    ("tue:23:30-wed:00:30", at("tue", "23:59"), True, True),
    ("tue:23:30-wed:00:30", at("wed", "00:00"), True, True),
    ("tue:23:30-wed:00:30", at("wed", "00:20"), True, True),
    ("tue:23:30-wed:00:30", at("wed", "00:26"), True, False),
    ("tue:23:30-wed:00:30", at("wed", "00:31"), False, False),
    # crossing the end of the week (sun -> mon)
    ("sun:23:45-mon:00:15", at("sun", "23:44"), False, False),
    ("sun:23:45-mon:00:15", at("sun", "23:50"), True, True),
    ("sun:23:45-mon:00:15", at("mon", "00:00"), True, True),
    ("sun:23:45-mon:00:15", at("mon", "00:05"), True, True),
    ("sun:23:45-mon:00:15", at("mon", "00:10", 1), True, False),
    ("sun:23:45-mon:00:15", at("mon", "00:15"), False, False),
    ("sun:23:45-mon:00:15", at("sat", "23:50"), False, False),
    ("sun:23:45-mon:00:15", at("mon", "00:05", weeks=1), True, True),
]


@pytest.mark.parametrize(("text", "when", "inside", "starts"), CASES)
def test_inside_and_may_start(text: str, when: float, inside: bool, starts: bool) -> None:
    w = window.parse(text)
    assert (window.remaining(w, when) is not None) is inside
    assert window.may_start(w, when, MARGIN) is starts


def test_remaining_counts_to_the_end_across_the_week() -> None:
    w = window.parse("sun:23:45-mon:00:15")
    assert window.remaining(w, at("sun", "23:45")) == 1800
    assert window.remaining(w, at("mon", "00:05")) == 600


def test_a_window_changed_after_deploy_is_judged_by_its_new_value() -> None:
    """The same run time against the window at deploy and the one RDS reports later: the
    reconciler reads it at run time, so only the new one counts."""
    run = at("thu", "03:10")
    at_deploy = window.parse("tue:23:30-wed:00:30")
    changed = window.parse("thu:03:00-thu:03:30")
    assert not window.may_start(at_deploy, run, MARGIN)
    assert window.may_start(changed, run, MARGIN)


@pytest.mark.parametrize(
    ("text", "when", "opens"),
    [
        ("wed:04:00-wed:04:30", at("mon", "09:00"), at("wed", "04:00")),
        ("wed:04:00-wed:04:30", at("wed", "04:10"), at("wed", "04:00", weeks=1)),
        ("sun:23:45-mon:00:15", at("mon", "00:20"), at("sun", "23:45")),
        ("mon:00:00-mon:00:30", at("mon", "00:00"), at("mon", "00:00")),
    ],
)
def test_next_start(text: str, when: float, opens: float) -> None:
    assert window.next_start(window.parse(text), when) == opens
