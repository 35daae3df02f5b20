"""Dates and times read the Israeli way in both languages: day.month.year and the 24-hour
clock, in the business's own zone (summer time included)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.base import i18n


@pytest.mark.parametrize("locale", ["he", "en"])
@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (datetime(2026, 6, 12, 9, 5, tzinfo=UTC), "12.6.26, 12:05"),  # summer: UTC+3
        (datetime(2026, 12, 6, 21, 59, tzinfo=UTC), "6.12.26, 23:59"),  # winter: UTC+2
        (datetime(2026, 12, 31, 22, 0, tzinfo=UTC), "1.1.27, 00:00"),  # a new year, at midnight
    ],
)
def test_a_moment_reads_day_first_on_the_24_hour_clock(
    locale: str, moment: datetime, shown: str
) -> None:
    with i18n.using_locale(locale):
        assert i18n.format_local(moment, "Asia/Jerusalem") == shown
        assert i18n.format_local(moment, "Asia/Jerusalem", fmt="HH:mm:ss") == shown[-5:] + ":00"
