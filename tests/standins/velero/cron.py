"""Cron expressions as Velero parses them (robfig/cron ParseStandard): 5 fields or a descriptor."""
from __future__ import annotations

import datetime
import re

_NAMES = {
    3: {n: i + 1 for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    4: {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())},
}
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class CronError(ValueError):
    """An unparsable schedule (message like robfig/cron's)."""


def parse_duration(text: str) -> float:
    """Seconds of a Go duration such as 720h0m0s or 1h30m (ValueError when invalid)."""
    text = (text or "").strip()
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            raise ValueError(f"time: invalid duration {text!r}")
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"time: invalid duration {text!r}")
    return total


def _field(text: str, index: int) -> set:
    low, high = _BOUNDS[index]
    values: set = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"failed to parse int from {step_text}")
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        else:
            bounds = [_value(p, index) for p in part.split("-", 1)]
            start, end = bounds[0], bounds[-1]
            if "-" not in part and step != 1:
                end = high
        if start < low or end > high or start > end:
            raise CronError(f"end of range ({end}) above maximum ({high}): {part}" if end > high
                            else f"beginning of range ({start}) below minimum ({low}): {part}")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values.add(0)
    return values


def _value(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax")
    value = int(text)
    if index == 4 and value == 7:
        return 0
    return value


class Cron:
    """A parsed schedule; .matches(minute) and .due(after, until) for minute-granular firing."""

    def __init__(self, spec: str):
        text = (spec or "").strip()
        if text.startswith(("CRON_TZ=", "TZ=")):
            text = text.split(None, 1)[1] if " " in text else ""
        self.every = None
        if text.startswith("@every "):
            try:
                self.every = parse_duration(text[len("@every "):])
            except ValueError as exc:
                raise CronError(f"failed to parse duration {text}: {exc}") from exc
            if self.every <= 0:
                raise CronError(f"failed to parse duration {text}")
            return
        if text.startswith("@"):
            if text not in _DESCRIPTORS:
                raise CronError(f"unrecognized descriptor: {text}")
            text = _DESCRIPTORS[text]
        fields = text.split()
        if len(fields) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
        self.sets = [_field(f, i) for i, f in enumerate(fields)]
        self.dom_star, self.dow_star = fields[2] in ("*", "?"), fields[4] in ("*", "?")

    def matches(self, when: datetime.datetime) -> bool:
        """Does the schedule fire in this minute?"""
        minute, hour, dom, month, dow = self.sets
        if when.minute not in minute or when.hour not in hour or when.month not in month:
            return False
        day_ok, week_ok = when.day in dom, (when.isoweekday() % 7) in dow
        if self.dom_star or self.dow_star:
            return day_ok and week_ok
        return day_ok or week_ok

    def due(self, after: float, until: float) -> bool:
        """Did a firing time fall in (after, until] (epoch seconds)?"""
        if self.every is not None:
            return until - after >= self.every
        start = datetime.datetime.fromtimestamp(after, datetime.timezone.utc).replace(second=0, microsecond=0)
        when = start + datetime.timedelta(minutes=1)
        end = datetime.datetime.fromtimestamp(until, datetime.timezone.utc)
        steps = 0
        while when <= end and steps < 60 * 24 * 8:
            if self.matches(when):
                return True
            when += datetime.timedelta(minutes=1)
            steps += 1
        return False
