"""The dashboard as a person uses it to compare runs, in headless Chromium (DevTools protocol).

The varying flags fit a 1400x900 window, the scatter and parallel coordinates draw the
runs' own values, a running run's chart gains points without a reload, an artifact
downloads whole, and nothing a run recorded (flags, tags, notes, names, metric names,
output) runs as script.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.runs.report.test_browser import CHROMIUM, EVIL, EVIL_IMG, Page, dashboard, shot

from trainrun.runs import record
from trainrun.runs.record._annotations import annotate

__all__ = ["dashboard"]  # the fixture, shared with the report's browser tests

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (make browser installs it)"
    ),
]


def window(page: Page, width: int = 1400, height: int = 900) -> None:
    page.send(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )


def many_flag_runs(make_run, n: int = 6) -> list[Path]:
    """Runs of a script with 14 flags, 3 of which differ; long constant values."""
    runs = []
    for i in range(n):
        flags = {
            f"constant_setting_{k:02d}": f"/some/long/path/to/data/file_{k}.parquet"
            for k in range(11)
        }
        flags.update(
            lr=[0.1, 0.01, 0.001][i % 3],
            units=[32, 64][i % 2],
            activation="relu" if i < 3 else "tanh",
        )
        runs.append(
            make_run(
                flags=flags,
                evaluation={
                    "accuracy": 0.6 + 0.05 * i,
                    "loss": 1.0 - 0.1 * i,
                    "auc": 0.7 + 0.01 * i,
                },
            )
        )
    return runs


def test_varying_flags_are_visible_without_scrolling_at_1400x900(dashboard, make_run, tmp_path):
    url, page = dashboard
    many_flag_runs(make_run)
    window(page)
    page.goto(url)
    page.wait_for("document.querySelectorAll('#runs tbody tr').length === 6")
    inner = page.js("window.innerWidth")
    assert inner == 1400
    for col in ("id", "status", "flag_lr", "flag_units", "flag_activation", "eval_accuracy"):
        right = page.js(
            f"document.querySelector('#runs th[data-col={col}]').getBoundingClientRect().right"
        )
        assert right <= inner, (col, right)
    # the flags that are the same in every run are not columns, and are summed up in one line
    assert page.js("document.querySelector('#runs th[data-col=flag_constant_setting_00]')") is None
    summary = page.js("document.getElementById('constant-summary').textContent")
    assert summary.startswith("same in every run: constant_setting_00=/some/long/path")
    # the column chooser shows one, and the choice is remembered across a reload
    page.js("document.querySelector('#chooser input[value=flag_constant_setting_00]').click()")
    page.wait_for("!!document.querySelector('#runs th[data-col=flag_constant_setting_00]')")
    page.goto(url + "?")
    page.wait_for("document.querySelectorAll('#runs tbody tr').length === 6")
    assert (
        page.js("!!document.querySelector('#runs th[data-col=flag_constant_setting_00]')") is True
    )
    shot(page, tmp_path, "dashboard-wide.png")


def test_scatter_and_parallel_coordinates_draw_the_runs_values(dashboard, make_run, tmp_path):
    url, page = dashboard
    runs = many_flag_runs(make_run)
    window(page)
    page.goto(url)
    page.wait_for("document.querySelectorAll('#scatter circle.point').length === 6")
    # every listed run (all pages, from /api/values), not only the page's
    page.wait_for(
        "document.getElementById('views-count').textContent === '6 runs, every listed run'"
    )
    assert page.js("document.getElementById('scatter-x').value") == "flag_lr"
    assert page.js("document.getElementById('scatter-y').value") == "eval_accuracy"
    points = page.js(
        "Array.from(document.querySelectorAll('#scatter circle.point'))"
        ".map(c => [c.dataset.id, c.dataset.x, c.dataset.y, +c.getAttribute('cx'), +c.getAttribute('cy')])"
    )
    by_id = {p[0]: p for p in points}
    for run in runs:
        flags = record.read_json(run / record.FLAGS_FILE)["values"]
        accuracy = record.read_json(run / record.EVALUATION_FILE)["accuracy"]
        assert float(by_id[run.name][1]) == flags["lr"]
        assert float(by_id[run.name][2]) == pytest.approx(accuracy)
    # a higher accuracy is drawn higher (smaller y), a larger lr further right
    ordered = sorted(points, key=lambda p: float(p[2]))
    assert [p[4] for p in ordered] == sorted((p[4] for p in ordered), reverse=True)
    lr_x = {float(p[1]): p[3] for p in points}
    assert lr_x[0.001] < lr_x[0.01] < lr_x[0.1]
    # another metric on the y axis
    page.js(
        "(() => { const s = document.getElementById('scatter-y'); s.value = 'eval_loss';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for("document.querySelector('#scatter circle.point').dataset.y.length > 0")
    ys = page.js(
        "Array.from(document.querySelectorAll('#scatter circle.point')).map(c => +c.dataset.y)"
    )
    assert sorted(ys) == pytest.approx(sorted(1.0 - 0.1 * i for i in range(6)))
    # parallel coordinates: one line per run over the varying flags and the metrics
    lines = page.js(
        "Array.from(document.querySelectorAll('#parallel path.line')).map(p => p.dataset.id)"
    )
    assert sorted(lines) == sorted(r.name for r in runs)
    dims = page.js(
        "Array.from(document.querySelectorAll('#parallel text.dim')).map(t => t.textContent)"
    )
    assert dims[:3] == ["lr", "units", "activation"] and {"accuracy", "loss", "auc"} <= set(dims)
    assert page.js(
        "Array.from(document.querySelectorAll('#parallel path.line')).every(p => p.getAttribute('d').split('L').length === "
        + str(len(dims))
        + ")"
    )
    assert page.js("typeof window.__pwned") == "undefined"
    shot(page, tmp_path, "views.png")


def test_a_running_runs_chart_gains_points_without_a_reload(dashboard, make_run, tmp_path):
    url, page = dashboard
    run = make_run(status="running", pid=os.getpid(), steps=5, output="first line\n")
    page.goto(f"{url}runs/{run.name}")
    page.js("window.__same_document = 1")
    before = page.js(
        "document.querySelector('svg.chart path.series').getAttribute('d').split('L').length"
    )
    assert before == 5
    assert "so far" in page.js("document.getElementById('elapsed').textContent")
    record.append_jsonl(
        run / record.METRICS_FILE,
        [
            {"step": s, "time": 1.0 + s, "loss": 1 / (s + 1), "val_loss": 1.0, "accuracy": 0.5}
            for s in range(5, 12)
        ],
    )
    with open(run / record.OUTPUT_FILE, "a", encoding="utf-8") as f:
        f.write("a later line\n")
    page.wait_for(
        "document.querySelector('svg.chart path.series').getAttribute('d').split('L').length === 12"
    )
    page.wait_for("document.getElementById('run-output').textContent.includes('a later line')")
    assert page.js("window.__same_document") == 1  # redrawn in place, not reloaded
    # the redrawn chart still answers the mouse
    box = page.js(
        "(() => { const svg = document.querySelector('svg.chart'); svg.scrollIntoView({block: 'center'});"
        " const r = svg.getBoundingClientRect(); return [r.left + r.width * 0.9, r.top + r.height / 2]; })()"
    )
    page.send("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
    tip = page.wait_for(
        "(() => { const t = document.querySelector('figure.chart .tooltip');"
        " return t.style.display === 'block' && t.textContent; })()"
    )
    assert tip.startswith("step 1")  # step 10 or 11: a point that arrived live


def test_an_artifact_downloads_with_its_bytes_intact(dashboard, make_run, tmp_path, wait_until):
    url, page = dashboard
    run = make_run()
    payload = bytes(range(256)) * 4096 + b"\x00end"  # 1 MiB of every byte value
    (run / record.ARTIFACTS_DIR / "weights.bin").write_bytes(payload)
    (run / record.ARTIFACTS_DIR / "metrics.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    page.goto(f"{url}runs/{run.name}")
    page.js("document.querySelector('table.artifacts a.download[href$=\"weights.bin\"]').click()")
    got = downloads / "weights.bin"
    wait_until(
        lambda: got.exists() and got.stat().st_size == len(payload), 60, 0.2, message="the download"
    )
    assert got.read_bytes() == payload
    # the preview of a CSV is a table, with its own download link
    page.js("document.querySelector('table.artifacts a.preview[href$=\"metrics.csv\"]').click()")
    page.wait_for("location.pathname.includes('/preview/') && document.readyState === 'complete'")
    cells = page.js(
        "Array.from(document.querySelectorAll('table.preview td')).map(td => td.textContent)"
    )
    assert cells == ["1", "0.5", "2", "0.25"]
    page.js("document.getElementById('download').click()")
    csv = downloads / "metrics.csv"
    wait_until(lambda: csv.exists() and csv.stat().st_size > 0, 60, 0.2, message="the csv download")
    assert csv.read_text() == "epoch,loss\n1,0.5\n2,0.25\n"


def test_nothing_a_run_recorded_runs_as_script(dashboard, make_run, tmp_path):
    url, page = dashboard
    hostile = EVIL + EVIL_IMG
    runs = []
    for i in range(2):
        run = make_run(
            flags={"x": hostile if i else "plain", "lr": 0.1 * (i + 1)},
            evaluation={hostile: 0.5 + i, "accuracy": 0.5},
            output=hostile + "\n",
        )
        record.append_jsonl(run / record.METRICS_FILE, [{"step": 0, "time": 1.0, hostile: 1.0}])
        (run / record.ARTIFACTS_DIR / "evil.txt").write_text(hostile)
        (run / record.ARTIFACTS_DIR / "evil.json").write_text(
            '{"a": "' + EVIL.replace('"', '\\"') + '"}'
        )
        annotate(run, add_tags=[f"t={hostile}"], note=hostile, name=EVIL[:70])
        runs.append(run)
    window(page)
    page.goto(url)
    page.wait_for("document.querySelectorAll('#runs tbody tr').length === 2")
    page.wait_for("document.querySelectorAll('#scatter circle.point').length === 2")
    page.js(
        "(() => { const s = document.getElementById('scatter-x'); s.value = 'flag_x';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    for column in page.js("window.trainrunDashboard.state().listing.columns"):
        page.js(
            "(() => { const b = document.querySelector('#chooser input[value=\"' + "
            + repr(column)
            + " + '\"]'); if (b && !b.checked) b.click(); })()"
        )
    pages = [
        url,
        f"{url}runs/{runs[1].name}",
        f"{url}compare?runs={runs[0].name},{runs[1].name}",
        f"{url}runs/{runs[1].name}/preview/artifacts/evil.txt",
        f"{url}runs/{runs[1].name}/preview/artifacts/evil.json",
    ]
    for target in pages:
        page.goto(target)  # waits for the load event: an <img onerror> would have fired
        assert page.js("typeof window.__pwned") == "undefined", target
        assert page.js("document.documentElement.hasAttribute('data-pwned')") is False, target
    page.goto(f"{url}runs/{runs[1].name}")
    assert hostile in page.js("document.querySelector('.run-note').textContent")
    assert hostile in page.js("document.getElementById('run-output').textContent")
