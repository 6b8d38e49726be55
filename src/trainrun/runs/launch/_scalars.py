"""Output scalars: metrics read from what a script prints (Guild AI's output scalars).

Asked for with ``training_run(output_scalars=True)`` (``trainrun run
--output-scalars``): every printed line made only of ``key: value`` or
``key=value`` pairs with numeric values (separated by spaces, commas,
semicolons or ``|``) becomes one row of metrics.jsonl::

    loss: 0.25
    epoch=3 loss=0.21 acc=0.91
    step 10 | loss=0.2          <- not a scalar line ("step 10" is not a pair)

A ``step`` (else ``epoch``) pair gives the row's step; otherwise rows are
numbered from 0. ``output_scalars`` may also be a regular expression: each
match on a line gives metrics from its named groups (``(?P<key>...)`` with
``(?P<value>...)``, or every named group as a metric, e.g.
``r"val_loss (?P<val_loss>\\S+)"``).
"""

from __future__ import annotations

import codecs
import math
import re
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan"
_PAIR = rf"([A-Za-z_][\w.\-/]*)\s*[=:]\s*({_NUMBER})"
_LINE = re.compile(rf"^\s*{_PAIR}(?:\s*[\s,;|]\s*{_PAIR})*\s*[,;]?\s*$")
_PAIRS = re.compile(_PAIR)
#: lines longer than this are not looked at (a progress bar, a dumped array)
MAX_LINE = 2000


def _number(text: str) -> float | int:
    value = float(text)
    if value.is_integer() and math.isfinite(value) and re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return value


class ScalarParser:
    """Fed raw output chunks; returns the metric rows of the complete lines in them."""

    def __init__(self, pattern: bool | str) -> None:
        self.custom = re.compile(pattern) if isinstance(pattern, str) else None
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.partial = ""
        self.next_step = 0

    def feed(self, chunk: bytes, final: bool = False) -> list[dict[str, Any]]:
        text = self.partial + self.decoder.decode(chunk, final)
        lines = re.split(r"[\r\n]", text)
        self.partial = "" if final else lines.pop()
        if len(self.partial) > MAX_LINE:
            self.partial = ""
        rows = []
        for line in lines:
            values = self._parse(line) if 0 < len(line) <= MAX_LINE else None
            if values:
                rows.append(self._row(values))
        return rows

    def _parse(self, line: str) -> dict[str, Any] | None:
        if self.custom is not None:
            found: dict[str, Any] = {}
            for match in self.custom.finditer(line):
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                if "key" in groups and "value" in groups:
                    groups = {groups["key"]: groups["value"]}
                for key, raw in groups.items():
                    try:
                        found[key] = _number(raw.strip())
                    except ValueError:
                        continue
            return found or None
        if not _LINE.match(line):
            return None
        return {key: _number(raw) for key, raw in _PAIRS.findall(line)}

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        step = values.pop("step", None)
        if step is None and "epoch" in values:
            step = values["epoch"]
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if not isinstance(step, int):
            step = self.next_step
        self.next_step = step + 1
        return {"step": step, "time": round(time.time(), 6), **values}
