"""Rich displays in a notebook: run records, training histories and report pages."""

from __future__ import annotations

import re

from trainrun import _humanize
from trainrun.runs import report
from trainrun.runs.store import latest_run, run_info
from trainrun.training.callbacks import History


def test_run_records_display_flags_and_evaluation_escaped(make_run, runs_dir) -> None:
    run = make_run(flags={"lr": 0.1, "x": "<b>bold</b>"}, evaluation={"accuracy": 0.9})
    info = run_info(run.name, runs_dir)
    assert isinstance(info, dict) and info["flags"]["lr"] == 0.1  # still the plain dict
    shown = info._repr_html_()
    assert "<td>0.1</td>" in shown and "<td>0.9</td>" in shown
    assert "&lt;b&gt;bold&lt;/b&gt;" in shown and "<b>bold</b>" not in shown
    assert latest_run(runs_dir)._repr_html_().startswith("<div><p><b>Run ")


def test_history_displays_its_summary_and_loss_curve() -> None:
    history = History()
    history.steps = list(range(1, 101))
    history.losses = [1 / s for s in history.steps]
    history.end_step, history.seconds, history.examples = 100, 2.0, 3200
    shown = history._repr_html_()
    assert "Trained for 100 steps" in shown or "Trained for" in shown
    path = re.search(r'<path d="([^"]+)"', shown).group(1)
    assert path.startswith("M") and path.count("L") == 99
    first_y = float(path.split()[0].split(",")[1])
    last_y = float(path.split()[-1].split(",")[1])
    assert first_y < last_y  # the loss falls: drawn from the top down


def test_svg_line_needs_two_finite_points_and_draws_at_most_400() -> None:
    assert _humanize.svg_line([0], [1.0]) == ""
    assert _humanize.svg_line([0, 1], [float("nan"), 1.0]) == ""
    many = _humanize.svg_line(list(range(10_000)), [float(i) for i in range(10_000)])
    assert many.count("L") <= 401


def test_a_report_in_a_notebook_sizes_itself_to_its_content(make_run) -> None:
    small = report.run_report(make_run(sources={"train.py": "x\n"}))
    big = report.run_report(
        make_run(flags={f"f{i}": i for i in range(40)}, evaluation={f"m{i}": i for i in range(20)})
    )
    height = lambda r: int(re.search(r"height:(\d+)px", r._repr_html_()).group(1))  # noqa: E731
    assert 300 <= height(small) < height(big) <= 4000
    shown = big._repr_html_()
    frame = re.search(r'<iframe id="([^"]+)"', shown).group(1)
    # the page reports its height to the notebook, which resizes that frame
    assert f"data-frame=&quot;{frame}&quot;" in shown and "postMessage" in report.static_text(
        "report.js"
    )
    assert "720px" not in shown


def test_training_runs_result_displays_itself(tmp_path) -> None:
    from trainrun.runs.launch import training_run

    script = tmp_path / "train.py"
    script.write_text(
        "from trainrun.runs.flags import flags\n"
        "from trainrun.runs.active import write_evaluation\n"
        "F = flags(lr=0.1)\n"
        "write_evaluation({'accuracy': 0.75})\n"
    )
    result = training_run(script, runs_dir=tmp_path / "runs", echo=False, view=False)
    assert result["status"] == "completed" and result["flags"]["lr"] == 0.1
    shown = result._repr_html_()
    assert "<td>0.75</td>" in shown and "completed" in shown
