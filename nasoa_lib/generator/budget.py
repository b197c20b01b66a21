"""Time budgets as people write them: ``90s``, ``10m``, ``1h``, ``1h30m``, or plain seconds."""

from __future__ import annotations

import math
import re

from nasoa_lib.errors import InvalidBudgetError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh])")
_HINT = "write a budget like 90s, 10m, 1h or 1h30m (s = seconds, m = minutes, h = hours)"


def parse_budget(text: str | float | int) -> float:
    """Seconds in ``text``; anything else (empty, negative, zero, unknown unit) is a clear error."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        if not raw:
            raise InvalidBudgetError("empty time budget", hint=_HINT)
        try:
            seconds = float(raw)
        except ValueError:
            compact = raw.replace(" ", "")
            parts = _PART.findall(compact)
            if not parts or "".join(n + u for n, u in parts) != compact:
                raise InvalidBudgetError(f"cannot read the time budget {text!r}", hint=_HINT) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidBudgetError(f"time budget {text!r} must be more than 0 seconds", hint=_HINT)
    return seconds


def format_seconds(seconds: float) -> str:
    """``42.0s``, ``3m 05s``, ``1h 02m``."""
    seconds = float(seconds)
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}h {minutes % 60:02d}m"
