"""The usage page's daily bar chart as inline SVG geometry (pure: no assets, no JavaScript)."""

from __future__ import annotations

import calendar

from pydantic import BaseModel, Field

from dispatcher.usage.models import UsageGroup

WIDTH, HEIGHT, TOP, BOTTOM = 720, 180, 14, 20


class Bar(BaseModel):
    day: str = Field(description="YYYY-MM-DD.")
    minutes: int = Field(description="Compute minutes used that day (billed, and in flight today).")
    x: float = Field(description="Left edge.")
    y: float = Field(description="Top edge.")
    width: float = Field(description="Bar width.")
    height: float = Field(description="Bar height (0 for a day without use).")


class Chart(BaseModel):
    width: int = Field(default=WIDTH, description="SVG width.")
    height: int = Field(default=HEIGHT, description="SVG height.")
    baseline: float = Field(description="y of the x axis.")
    max_minutes: int = Field(description="The tallest bar's minutes (the y axis' top).")
    bars: list[Bar] = Field(description="One per day of the month.")


def daily_chart(month: str, days: list[UsageGroup]) -> Chart:
    """One bar per day of ``month``, scaled to the busiest day."""
    year, number = (int(part) for part in month.split("-"))
    count = calendar.monthrange(year, number)[1]
    used = {group.key: group.used_minutes for group in days}
    top = max(used.values(), default=0)
    slot = WIDTH / count
    baseline = HEIGHT - BOTTOM
    bars = []
    for day in range(1, count + 1):
        key = f"{month}-{day:02d}"
        minutes = used.get(key, 0)
        height = (baseline - TOP) * minutes / top if top else 0.0
        bars.append(Bar(day=key, minutes=minutes, x=round(slot * (day - 1) + 1, 2), y=round(baseline - height, 2),
                        width=round(slot - 2, 2), height=round(height, 2)))
    return Chart(baseline=baseline, max_minutes=top, bars=bars)
