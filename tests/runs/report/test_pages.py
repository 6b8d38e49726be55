"""Report pages: the data dict, the HTML, bounds, escaping, opening rules, the CLI verbs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import trainrun
from trainrun.cli._main import run as cli
from trainrun.exceptions import RunNotFoundError
from trainrun.runs import record, report
from trainrun.runs.report import _chart as _report_chart
from trainrun.runs.report import _data as _report_data


def test_downsample_keeps_extremes_and_bounds_points():
    n = 100_000
    x = list(range(n))
    y = [1.0] * n
    y[31_337] = 50.0  # a spike must survive downsampling
    y[77_777] = -9.0
    xs, ys = _report_chart.downsample(x, y, 2000)
    assert len(xs) <= 2000
    assert max(ys) == 50.0 and min(ys) == -9.0
    assert xs == sorted(xs) and xs[0] == 0 and xs[-1] == n - 1
    assert 31_337 in xs and 77_777 in xs


def test_training_and_validation_share_a_chart(make_run):
    run_dir = make_run(steps=10)
    data = _report_data.run_data(run_dir)
    names = [c["name"] for c in data["charts"]]
    assert names == ["loss", "accuracy"]
    loss = data["charts"][0]
    assert [s["metric"] for s in loss["series"]] == ["loss", "val_loss"]
    assert [s["dashed"] for s in loss["series"]] == [False, True]


def test_run_page_has_every_section(make_run):
    run_dir = make_run(evaluation={"accuracy": 0.875, "label/mean": 0.25}, error=None)
    page = report.run_report(run_dir.name, runs_dir=run_dir.parent).html
    for text in (
        "Summary",
        "train.py",
        "completed",
        "0.875",
        "label/mean",
        "dropout",
        "epoch 2",
        "import trainrun",
        "data:image/png;base64,",
        f"tensorboard --logdir {run_dir / 'tensorboard'}",
        f"trainrun board --runs-dir {run_dir.parent}",
    ):
        assert text in page, text
    paths = re.findall(r'<path class="series[^"]*" stroke="[^"]+" d="([^"]+)"', page)
    assert len(paths) == 3 and all(p.startswith("M") and " L" in p for p in paths)


def test_failed_run_shows_error_and_traceback(make_run):
    run_dir = make_run(status="failed", error="ValueError: boom")
    page = report.run_report(run_dir).html
    assert "ValueError: boom" in page and "Traceback" in page and "failed" in page


def test_run_strings_are_escaped(make_run, runs_dir):
    evil = "<script>alert(1)</script>"
    run_dir = make_run(
        flags={"note": evil},
        evaluation={evil: 1.0},
        output=f"{evil}\n",
        sources={"evil<b>.py": evil},
    )
    record.append_jsonl(run_dir / record.METRICS_FILE, [{"step": 1, "</script><b>x": 2.0}])
    page = report.run_report(run_dir).html
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the chart data embedded for tooltips cannot close its <script> element
    embedded = page.split('id="trainrun-charts">', 1)[1].split("</script>", 1)[0]
    assert "<" not in embedded
    assert json.loads(embedded)[-1]["series"][0]["label"] == "</script><b>x"


def test_hundred_thousand_points_and_fifty_megabytes_of_output(make_run):
    run_dir = make_run(steps=0, output="")
    record.append_jsonl(
        run_dir / record.METRICS_FILE,
        ({"step": i, "loss": 1.0 / (i + 1), "val_loss": 2.0 / (i + 1)} for i in range(100_000)),
    )
    out = run_dir / record.OUTPUT_FILE
    with open(out, "wb") as f:
        f.write(b"FIRST LINE\n" + b"x" * 100 + b"\n")
        f.seek(50_000_000)  # sparse: the middle is never written, and must never be read
        f.write(b"\nLAST LINE\n")
    data = _report_data.run_data(run_dir)
    assert data["metric_points"] == 100_000
    for s in data["charts"][0]["series"]:
        assert s["points"] == 100_000 and len(s["x"]) <= _report_chart.MAX_POINTS
    assert data["output"]["truncated"] and data["output"]["size"] > 50_000_000
    page = report.RunReport(data).html
    assert "FIRST LINE" in page and "LAST LINE" in page and "not shown" in page
    assert len(page) < 2_000_000


def test_output_progress_bars_and_colours_are_cleaned(make_run):
    run_dir = make_run(output="\x1b[32mgreen\x1b[0m\nstep 1\rstep 2\rstep 3\ndone\n")
    text = _report_data.read_output(run_dir)["text"]
    assert text == "green\nstep 3\ndone\n"


def test_comparison_highlights_differences_and_diffs_sources(make_run):
    a = make_run(
        flags={"dropout": 0.2, "units": 64},
        evaluation={"accuracy": 0.8},
        sources={"train.py": "a = 1\nb = 2\n", "old.py": "x\n"},
    )
    b = make_run(
        flags={"dropout": 0.4, "units": 64},
        evaluation={"accuracy": 0.9},
        loss_scale=2.0,
        sources={"train.py": "a = 1\nb = 3\n", "new.py": "y\n"},
        output="epoch 1\nepoch 2\nbetter\n",
    )
    data = report.comparison_report([a.name, b.name], runs_dir=a.parent).data
    assert data["ids"] == [a.name, b.name]
    flags = {row["name"]: row for row in data["flags"]}
    assert flags["dropout"]["differs"] and not flags["units"]["differs"]
    files = {f["path"]: f for f in data["diffs"][0]["files"]}
    assert files["train.py"]["state"] == "changed"
    assert files["old.py"]["state"] == "removed" and files["new.py"]["state"] == "added"
    kinds = [(line["kind"], line["text"]) for line in files["train.py"]["diff"]["lines"]]
    assert ("del", "-b = 2") in kinds and ("add", "+b = 3") in kinds
    out = [line["text"] for line in data["diffs"][0]["output"]["lines"]]
    assert "-done" in out and "+better" in out
    loss = data["charts"][0]
    assert {s["run"] for s in loss["series"]} == {a.name, b.name}
    page = report.RunReport(data).html
    assert 'class="differs"' in page and "+b = 3" in page


def test_three_runs_diff_against_the_first(make_run):
    dirs = [make_run() for _ in range(3)]
    data = report.comparison_report([str(d) for d in dirs]).data
    assert [(d["from"], d["to"]) for d in data["diffs"]] == [
        (dirs[0].name, dirs[1].name),
        (dirs[0].name, dirs[2].name),
    ]


def test_defaults_are_latest_and_latest_two(make_run, runs_dir):
    first, second, third = make_run(), make_run(), make_run()
    assert report.run_report(runs_dir=runs_dir).data["id"] == third.name
    assert report.run_report(1, runs_dir=runs_dir).data["id"] == second.name
    assert report.comparison_report(runs_dir=runs_dir).data["ids"] == [second.name, third.name]
    record_dict = record.read_run(first)
    assert report.run_report(record_dict, runs_dir=runs_dir).data["id"] == first.name


def test_missing_runs_raise_clear_errors(runs_dir, make_run):
    with pytest.raises(RunNotFoundError, match="nope"):
        report.run_report("nope", runs_dir=runs_dir)
    make_run()
    with pytest.raises(RunNotFoundError, match="Received"):
        report.comparison_report(runs_dir=runs_dir)
    with pytest.raises(ValueError, match="at least two"):
        report.comparison_report(["x"], runs_dir=runs_dir)


def test_view_run_prints_path_and_opens_only_when_asked(make_run, runs_dir, capsys, monkeypatch):
    make_run()
    opened = []
    monkeypatch.setattr(report.webbrowser, "open", lambda url: opened.append(url))
    path = report.view_run(runs_dir=runs_dir)  # under pytest stdout is no terminal: no browser
    assert path.exists() and path.suffix == ".html"
    assert str(path) in capsys.readouterr().out
    assert opened == []
    seen = []
    report.view_run(runs_dir=runs_dir, viewer=seen.append)
    assert seen == [str(path)]
    monkeypatch.setenv("CI", "true")
    assert not report.is_interactive()


def test_save_functions_write_where_told(make_run, runs_dir, tmp_path):
    a, b = make_run(), make_run()
    view = report.save_run_view(a.name, tmp_path / "out" / "view.html", runs_dir=runs_dir)
    assert view.read_text().startswith("<!doctype html>")
    assert report.save_run_view(b, runs_dir=runs_dir) == b / "report.html"
    cmp_path = report.save_run_comparison([a, b], tmp_path / "cmp.html")
    assert a.name in cmp_path.read_text()


def test_pages_fetch_nothing_from_the_network(make_run):
    a, b = make_run(), make_run()
    for page in (report.run_report(a).html, report.comparison_report([a, b]).html):
        assert not re.search(r'(src|href)="(https?:)?//', page)
        assert "@import" not in page


def test_notebook_display_is_an_isolated_iframe(make_run):
    rep = report.run_report(make_run(flags={"q": 'say "hi" & <b>'}))
    html = rep._repr_html_()
    assert html.startswith("<iframe id=") and " srcdoc=" in html and "<b>" not in html
    assert repr(rep).startswith("<RunReport run ")


def test_public_names_are_exported():
    assert trainrun.view_run is report.view_run
    assert trainrun.compare_runs is report.compare_runs
    assert trainrun.save_run_view is report.save_run_view
    assert trainrun.save_run_comparison is report.save_run_comparison


def test_cli_view_and_compare(make_run, runs_dir, tmp_path, capsys):
    a, b = make_run(), make_run()
    assert cli(["view", "--runs-dir", str(runs_dir), "--no-open"]) == 0
    assert "Run report:" in capsys.readouterr().out
    out = tmp_path / "v.html"
    assert cli(["view", a.name, "--runs-dir", str(runs_dir), "-o", str(out)]) == 0
    assert a.name in out.read_text()
    cmp_out = tmp_path / "c.html"
    assert cli(["compare", a.name, b.name, "--runs-dir", str(runs_dir), "-o", str(cmp_out)]) == 0
    assert b.name in cmp_out.read_text()
    assert cli(["view", "no-such-run", "--runs-dir", str(runs_dir), "--no-open"]) == 2
    assert "no-such-run" in capsys.readouterr().err


def test_half_written_run_still_renders(runs_dir):
    run_dir = record.new_run_dir(runs_dir)
    record.write_json(
        run_dir / record.RUN_FILE, {"status": "running", "pid": 999_999_999, "host": record.HOST}
    )
    (run_dir / record.METRICS_FILE).write_text(
        '{"step": 0, "loss": 1.0}\n{"step": 1, "lo', encoding="utf-8"
    )
    (run_dir / record.FLAGS_FILE).write_text("{not json", encoding="utf-8")
    data = report.run_report(run_dir).data
    assert data["status"] == "killed"
    assert data["problems"] and "flags.json" in data["problems"][0]
    assert data["charts"][0]["series"][0]["points"] == 1
    assert isinstance(Path(data["run_dir"]), Path)


def test_ui_binds_loopback_by_default_and_reports_a_busy_port(tmp_path, capsys):
    import socket

    from trainrun.cli._main import build_parser

    args = build_parser().parse_args(["ui"])
    assert (args.host, args.runs_dir) == ("127.0.0.1", "runs")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert cli(["ui", str(tmp_path), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err
    assert cli(["ui", str(tmp_path), "--port", "70000"]) == 2


def test_view_run_in_a_notebook_displays_inline(make_run, runs_dir, monkeypatch):
    import sys
    import types

    make_run()
    shown = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: object()
    display_mod = types.ModuleType("IPython.display")
    display_mod.display = shown.append
    ipython.display = display_mod
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(
        report.webbrowser, "open", lambda url: pytest.fail("no browser in a notebook")
    )
    report.view_run(runs_dir=runs_dir)
    assert len(shown) == 1 and isinstance(shown[0], report.RunReport)
    assert shown[0]._repr_html_().startswith("<iframe")
