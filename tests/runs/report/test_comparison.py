"""What the report pages put first and what the comparison marks."""

from __future__ import annotations

import re

from trainrun.runs import report
from trainrun.runs.report import _data


def test_comparison_marks_the_better_value_and_ignores_times(make_run) -> None:
    a = make_run(evaluation={"accuracy": 0.8, "loss": 0.5, "same": 1.0}, loss_scale=1.0)
    b = make_run(evaluation={"accuracy": 0.9, "loss": 0.7, "same": 1.0}, loss_scale=2.0)
    data = report.comparison_report([a.name, b.name], runs_dir=a.parent).data
    evaluation = {r["name"]: r for r in data["evaluation"]}
    assert evaluation["accuracy"]["best"] == 1  # higher is better
    assert evaluation["loss"]["best"] == 0  # lower is better for a loss
    assert evaluation["same"]["best"] is None and not evaluation["same"]["differs"]
    metrics = {r["name"]: r for r in data["metrics"]}
    assert metrics["val_loss"]["best"] == 0 and metrics["val_loss"]["better"] == "lower"
    summary = {r["name"]: r for r in data["summary"]}
    # two runs always start, end and last differently: not flagged as differences
    for name in ("start", "end", "duration"):
        assert not summary[name]["differs"], name
    html = report.comparison_report([a.name, b.name], runs_dir=a.parent).html
    cells = re.findall(r'<td class="num mono best"[^>]*>([^<]*)</td>', html)
    assert "0.9" in cells and "0.5" in cells


def test_output_lines_that_differ_only_in_numbers_are_marked(make_run) -> None:
    a = make_run(output="start\nstep 1 loss 0.51\nstep 2 loss 0.40\nsaved model\n")
    b = make_run(output="start\nstep 1 loss 0.62\nstep 2 loss 0.43\nsaved best model\n")
    data = report.comparison_report([a.name, b.name], runs_dir=a.parent).data
    lines = data["diffs"][0]["output"]["lines"]
    marked = {ln["text"] for ln in lines if ln.get("numbers_only")}
    assert marked == {
        "-step 1 loss 0.51",
        "-step 2 loss 0.40",
        "+step 1 loss 0.62",
        "+step 2 loss 0.43",
    }
    changed = {ln["text"] for ln in lines if ln["kind"] in ("add", "del")}
    assert {"-saved model", "+saved best model"} <= changed - marked
    html = report.comparison_report([a.name, b.name], runs_dir=a.parent).html
    assert 'class="numbers-only"' in html and 'class="add numbers-only"' in html


def test_run_page_puts_evaluation_and_flags_first_and_opens_only_the_script(make_run) -> None:
    run = make_run(
        evaluation={"accuracy": 0.9},
        sources={"a_helper.py": "x = 1\n", "train.py": "import a_helper\n", "z.py": "z\n"},
    )
    data = report.run_report(run).data
    assert [s["path"] for s in data["sources"]][0] == "train.py"
    assert [s["main"] for s in data["sources"]] == [True, False, False]
    html = report.run_report(run).html
    main = html.index("<main>")
    order = [
        html.index(f'id="{name}"', main)
        for name in ("evaluation", "flags", "metrics", "summary", "source")
    ]
    assert order == sorted(order)
    assert html.count('<details class="source main" open>') == 1
    assert '<details class="source">' in html  # the others closed


def test_live_data_renders_the_charts_and_output_tail_of_a_running_run(make_run) -> None:
    run = make_run(status="running", steps=5, output="line 1\nline 2\n")
    live = report.render_live(_data.live_data(run))
    assert live["status"] == "running" and live["metric_points"] == 5
    assert live["elapsed"] is not None and live["elapsed"] >= 0
    assert '<figure class="chart"' in live["charts_html"] and "line 2" in live["output_html"]
    assert live["charts"][0]["series"][0]["x"] == [0, 1, 2, 3, 4]


def test_lower_is_better_reads_metric_names() -> None:
    for name in ("loss", "val_loss", "average_loss", "rmse", "error_rate", "perplexity"):
        assert _data.lower_is_better(name), name
    for name in ("accuracy", "auc", "precision", "recall", "f1"):
        assert not _data.lower_is_better(name), name
