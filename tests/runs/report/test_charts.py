"""Report details found by trying real runs: sparse metric histories stay visible."""

from __future__ import annotations

from trainrun.runs import record, report
from trainrun.runs.report import _data as _report_data


def test_a_sparse_history_gets_a_dot_per_point(make_run):
    # an estimator logs its loss every 100 steps: a 90-step run has one point
    run_dir = make_run(steps=0, output="")
    record.append_jsonl(run_dir / record.METRICS_FILE, [{"step": 90, "loss": 0.48}])
    page = report.RunReport(_report_data.run_data(run_dir)).html
    assert page.count('<circle class="mark"') == 1
    # a long history draws its line only
    dense = make_run(steps=0, output="")
    record.append_jsonl(
        dense / record.METRICS_FILE, ({"step": i, "loss": 1 / (i + 1)} for i in range(500))
    )
    assert '<circle class="mark"' not in report.RunReport(_report_data.run_data(dense)).html
