"""Times read one way everywhere: the one formatter (console/base/labels.duration) at its edges,
in both languages, as waiting, as time left and as time over. Its JavaScript twin in
static/app.js is held to the same table in tests/stories/test_browser_queue.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.base import labels
from console.base.i18n import using_locale

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)

# seconds, English, Hebrew: the same table the browser story gives the JS twin.
DURATIONS = [
    (0, "0 s", "0 שנ׳"),
    (59, "59 s", "59 שנ׳"),
    (59.999, "59 s", "59 שנ׳"),
    (60, "1 m", "1 ד׳"),
    (38 * 60 + 15, "38 m", "38 ד׳"),
    (3599, "59 m", "59 ד׳"),
    (3600, "1 h 00 m", "1 ש׳ 00 ד׳"),
    (3780, "1 h 03 m", "1 ש׳ 03 ד׳"),
    (16 * 3600 + 38 * 60 + 59, "16 h 38 m", "16 ש׳ 38 ד׳"),
    (24 * 3600 - 1, "23 h 59 m", "23 ש׳ 59 ד׳"),
    (24 * 3600, "1 d 0 h", "1 ימ׳ 0 ש׳"),
    (3 * 86400 + 4 * 3600 + 59 * 60, "3 d 4 h", "3 ימ׳ 4 ש׳"),
    (-5, "0 s", "0 שנ׳"),
]


@pytest.mark.parametrize(("seconds", "english", "hebrew"), DURATIONS)
def test_a_duration_reads_the_same_in_both_languages(
    seconds: float, english: str, hebrew: str
) -> None:
    with using_locale("en"):
        assert labels.duration(seconds) == english
    with using_locale("he"):
        assert labels.duration(seconds) == hebrew


def test_time_left_and_time_over() -> None:
    with using_locale("en"):
        assert labels.time_left(NOW, NOW) == "0 s"
        assert labels.time_left(NOW + timedelta(minutes=38, seconds=15), NOW) == "38 m"
        assert labels.time_left(NOW + timedelta(hours=1, minutes=3), NOW) == "1 h 03 m"
        assert labels.time_left(NOW - timedelta(seconds=59), NOW) == "over by 59 s"
        assert labels.time_left(NOW - timedelta(hours=16, minutes=38), NOW) == "over by 16 h 38 m"
        assert labels.time_left(NOW - timedelta(days=2, hours=5), NOW) == "over by 2 d 5 h"
    with using_locale("he"):
        assert (
            labels.time_left(NOW - timedelta(hours=16, minutes=38), NOW) == "חריגה של 16 ש׳ 38 ד׳"
        )
        assert labels.time_left(NOW - timedelta(days=2, hours=5), NOW) == "חריגה של 2 ימ׳ 5 ש׳"
        assert labels.time_left(NOW + timedelta(minutes=38), NOW) == "38 ד׳"


def test_waiting_and_totals() -> None:
    with using_locale("en"):
        assert labels.waited(NOW - timedelta(minutes=4, seconds=59), NOW) == "4 m"
        assert labels.waited(NOW + timedelta(seconds=3), NOW) == "0 s"  # clocks a little apart
        # totals in reports stay in hours
        assert labels.duration(50 * 3600 + 60, days=False) == "50 h 01 m"
    with using_locale("he"):
        assert labels.waited(NOW - timedelta(hours=1, minutes=3), NOW) == "1 ש׳ 03 ד׳"
        assert labels.duration_words()["over"] == "חריגה של %(duration)s"
