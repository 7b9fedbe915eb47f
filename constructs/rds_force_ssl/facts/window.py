"""RDS maintenance windows: pure functions of the window's text and a time, no AWS calls.

RDS gives a database's ``PreferredMaintenanceWindow`` as ``ddd:hh24:mi-ddd:hh24:mi`` in UTC, days
``mon`` to ``sun``, at least 30 minutes long. A window may cross midnight (``tue:23:30-wed:00:30``)
and the end of the week (``sun:23:45-mon:00:15``), and it may change at any time, so the
scheduled reconciler reads it from RDS on every run and asks only these questions of it.
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html

Lambda code: stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_S = 24 * 3600
WEEK_S = 7 * DAY_S
_BOUND = re.compile(r"^([a-z]{3}):(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class Window:
    """A weekly window as seconds since Monday 00:00 UTC; ``end`` < ``start`` when it wraps
    past the end of the week."""

    start: int
    end: int
    text: str

    @property
    def length(self) -> int:
        return (self.end - self.start) % WEEK_S


def _bound(text: str, whole: str) -> int:
    m = _BOUND.match(text.strip().lower())
    if m is None or m.group(1) not in DAYS:
        raise ValueError(
            f"maintenance window {whole!r} is not ddd:hh24:mi-ddd:hh24:mi with days mon..sun"
        )
    hours, minutes = int(m.group(2)), int(m.group(3))
    if hours > 23 or minutes > 59:
        raise ValueError(f"maintenance window {whole!r} has a time past 23:59")
    return DAYS.index(m.group(1)) * DAY_S + hours * 3600 + minutes * 60


def parse(text: str) -> Window:
    """The window RDS reports, e.g. ``sun:23:45-mon:00:15`` (case as RDS or a person writes
    it). Raises ValueError for anything else, or for an empty window."""
    first, sep, second = text.partition("-")
    if not sep:
        raise ValueError(
            f"maintenance window {text!r} is not ddd:hh24:mi-ddd:hh24:mi with days mon..sun"
        )
    window = Window(_bound(first, text), _bound(second, text), text.strip().lower())
    if window.length == 0:
        raise ValueError(f"maintenance window {text!r} is empty")
    return window


def week_second(epoch: float) -> float:
    """Seconds since the last Monday 00:00 UTC."""
    at = datetime.fromtimestamp(epoch, UTC)
    return at.weekday() * DAY_S + at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6


def remaining(window: Window, epoch: float) -> float | None:
    """Seconds left in ``window`` at ``epoch``, or None when ``epoch`` is outside it (the start
    is inside, the end is not)."""
    into = (week_second(epoch) - window.start) % WEEK_S
    if into >= window.length:
        return None
    return window.length - into


def may_start(window: Window, epoch: float, margin_s: float) -> bool:
    """Whether a restart may begin at ``epoch``: inside the window, with at least ``margin_s``
    of it left, so that a restart of typical length ends inside it too."""
    left = remaining(window, epoch)
    return left is not None and left >= margin_s


def next_start(window: Window, epoch: float) -> float:
    """When the window next opens after ``epoch`` (``epoch`` itself if it opens then)."""
    return epoch + (window.start - week_second(epoch)) % WEEK_S
