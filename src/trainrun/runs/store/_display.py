"""A run record that shows itself in a notebook: ``run_info`` and ``latest_run`` return it.

It is the plain dict of ``record.read_run`` (every key, every dict method), with a
``_repr_html_`` that puts what a person compares first: name and status, flags,
evaluation and last metrics, then times and the folder. Values are escaped.

>>> rec = RunRecord({"id": "r1", "status": "completed", "flags": {"lr": 0.1}})
>>> rec["flags"]["lr"], isinstance(rec, dict)
(0.1, True)
>>> "<td>0.1</td>" in rec._repr_html_()
True
"""

from __future__ import annotations

import html
from typing import Any

from trainrun import _humanize

__all__ = ["RunRecord"]


def _table(title: str, values: Any) -> str:
    if not isinstance(values, dict) or not values:
        return ""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td>{html.escape(_humanize.number(v))}</td></tr>"
        for k, v in values.items()
    )
    return f"<div style='display:inline-block;vertical-align:top;margin-right:24px'><b>{html.escape(title)}</b><table>{rows}</table></div>"


class RunRecord(dict):  # type: ignore[type-arg]
    """A run's record (a dict) with a notebook display."""

    def _repr_html_(self) -> str:
        name = self.get("name")
        head = f"Run {self.get('id')}" + (f" — {name}" if isinstance(name, str) else "")
        facts = [
            str(self.get("status")),
            _humanize.duration(self.get("duration")),
            _humanize.timestamp(self.get("start")),
        ]
        tags = self.get("tags")
        if isinstance(tags, dict) and tags:
            facts.append(
                "tags: " + ", ".join(k if v is True else f"{k}={v}" for k, v in tags.items())
            )
        note = self.get("note")
        parts = [
            f"<p><b>{html.escape(head)}</b> · {html.escape(' · '.join(facts))}</p>",
            f"<p><i>{html.escape(note)}</i></p>" if isinstance(note, str) else "",
            _table("Flags", self.get("flags")),
            _table("Evaluation", self.get("evaluation")),
            _table("Last metrics", self.get("metrics")),
            f"<p style='color:#5b6475'>{html.escape(str(self.get('run_dir', '')))}</p>",
        ]
        return "<div>" + "".join(parts) + "</div>"
