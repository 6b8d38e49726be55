"""matplotlib figures a run shows or leaves open land in its ``plots/`` folder.

tfruns diverts R's plots into the run; trainrun does the same for matplotlib,
without ``save_plot``: ``plt.show()`` first saves every open figure into
``plots/``, and figures still open when the script (or an in-process run)
ends are saved then. Standard library only: the launch bootstrap loads this
file by path, and only once the script has imported ``matplotlib.pyplot``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_saved: dict[int, int] = {}  # id(figure) -> how many artists it had when saved


def _fingerprint(fig: Any) -> int:
    try:
        return sum(len(ax.get_children()) for ax in fig.get_axes()) + len(fig.get_axes())
    except Exception:  # noqa: BLE001
        return -1


def save_open_figures(plots_dir: str | os.PathLike[str]) -> list[str]:
    """Save each open pyplot figure not saved as it is now; the file names written."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    written = []
    try:
        numbers = list(plt.get_fignums())
    except Exception:  # noqa: BLE001
        return []
    os.makedirs(plots_dir, exist_ok=True)
    for num in numbers:
        fig = plt.figure(num)
        mark = _fingerprint(fig)
        if _saved.get(id(fig)) == mark:
            continue
        base = f"figure-{num}" if isinstance(num, int) else "figure"
        name, n = f"{base}.png", 1
        while os.path.exists(os.path.join(plots_dir, name)):
            n += 1
            name = f"{base}-{n}.png"
        try:
            fig.savefig(os.path.join(plots_dir, name))
        except Exception as exc:  # noqa: BLE001 - one bad figure must not cost the others
            sys.stderr.write(f"trainrun: warning: could not save figure {num}: {exc}\n")
            continue
        _saved[id(fig)] = mark
        written.append(name)
    return written


def patch_show(pyplot: Any, plots_dir: str) -> None:
    """``pyplot.show`` saves the open figures into ``plots_dir`` before showing them."""
    original = pyplot.show
    if getattr(original, "_trainrun", False):
        return

    def show(*args: Any, **kwargs: Any) -> Any:
        save_open_figures(plots_dir)
        return original(*args, **kwargs)

    show._trainrun = True  # type: ignore[attr-defined]
    show.__doc__ = original.__doc__
    pyplot.show = show
