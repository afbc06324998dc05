"""Durations and rates as a terminal prints them: ages the way kubectl does, rates per minute.

`kubectl conveyor` words its tables with these, so that its ages read like
`kubectl get`'s beside them.
"""

from __future__ import annotations

import datetime


def human_duration(seconds: float | None) -> str:
    """A duration as kubectl prints ages: 45s, 3m20s, 2h5m, 4d3h, 2y10d."""
    if seconds is None:
        return "<none>"
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(moment: datetime.datetime | None, now: datetime.datetime) -> str:
    return "<none>" if moment is None else human_duration((now - moment).total_seconds())


def rate(per_minute: float) -> str:
    """0, 0.2/m, 12/m, 1.2k/m."""
    if per_minute <= 0:
        return "0"
    if per_minute >= 1000:
        return f"{per_minute / 1000:.1f}k/m"
    if per_minute >= 10:
        return f"{per_minute:.0f}/m"
    return f"{per_minute:.1f}/m"
