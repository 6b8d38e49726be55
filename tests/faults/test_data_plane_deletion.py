"""Data loss, reproduced first: purge/clean/restore/copy and the dashboard's delete reach only
runs inside the runs folder, and a run folder that is a link is removed as the link."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from tests.runs.store.conftest import write_run

from trainrun.exceptions import RunNotFoundError, RunRecordError
from trainrun.runs import record
from trainrun.runs.store import clean_runs, copy_run, get_run_dir, ls_runs, purge_runs, restore_runs

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A runs folder with three runs, and precious folders around it."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for i in range(3):
        write_run(runs, f"2026-11-27T10-0{i}-00Z")
    precious = tmp_path / "somewhere"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    elsewhere_run = write_run(tmp_path / "other-runs", "2026-11-27T09-00-00Z")
    return {"runs": runs, "precious": precious, "elsewhere_run": elsewhere_run}


def trainrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainrun", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def intact(world: dict[str, Path]) -> bool:
    return (
        (world["precious"] / "thesis.tex").read_text() == "years of work"
        and len(record.run_folder_names(world["runs"])) == 3
        and (world["elsewhere_run"] / record.RUN_FILE).is_file()
    )


@pytest.mark.parametrize(
    "ref",
    ["runs/", "runs", ".", "../somewhere", "somewhere", "/", "..", "runs/..", "other-runs/x"],
)
def test_purge_and_clean_from_the_shell_refuse_what_is_not_a_run_inside(world, ref):
    cwd = world["runs"].parent
    ls_runs(world["runs"])  # the index exists too
    for verb in ("purge", "clean"):
        done = trainrun(verb, ref, "--runs-dir", "runs", "--yes", cwd=cwd)
        assert done.returncode == 2, (verb, ref, done.stdout, done.stderr)
        assert "not a run" in done.stderr or "No run" in done.stderr, done.stderr
        assert intact(world)
    assert not (cwd / "archive").exists() and not (world["precious"] / "archive").exists()
    assert (world["runs"] / ".trainrun" / "index.sqlite").is_file()


def test_python_verbs_refuse_paths_outside_the_runs_folder(world):
    runs = world["runs"]
    for ref in (world["precious"], str(world["precious"]), world["elsewhere_run"], runs):
        with pytest.raises(RunNotFoundError):
            purge_runs([ref], runs, confirm=False)
        with pytest.raises(RunNotFoundError):
            clean_runs(ref, runs)
    with pytest.raises(RunNotFoundError, match="not a run"):
        purge_runs(str(world["precious"]), runs, confirm=False)
    # a run elsewhere is a run (it can be read, shown, copied) but is not deleted through runs/
    assert get_run_dir(str(world["elsewhere_run"]), runs) == world["elsewhere_run"]
    with pytest.raises(RunNotFoundError, match="inside the runs folder"):
        purge_runs(str(world["elsewhere_run"]), runs, confirm=False)
    assert intact(world)


def test_show_refuses_a_folder_that_is_not_a_run(world):
    cwd = world["runs"].parent
    done = trainrun("show", f"../{cwd.name}/somewhere", "--runs-dir", "runs", cwd=cwd)
    assert done.returncode == 2 and "is not a run folder" in done.stderr
    done = trainrun("show", "somewhere/", cwd=world["runs"].parent)
    assert done.returncode == 2 and "is not a run folder" in done.stderr


def test_a_stray_folder_in_the_runs_folder_is_neither_listed_nor_deleted(world):
    runs = world["runs"]
    stray = runs / "datasets"
    stray.mkdir()
    (stray / "big.csv").write_text("a,b\n")
    assert "datasets" not in ls_runs(runs)["id"].tolist()
    clean_runs(None, runs)  # every run, and nothing else
    assert (stray / "big.csv").is_file()
    assert len(record.run_folder_names(runs / "archive")) == 3
    with pytest.raises(RunNotFoundError):
        purge_runs("datasets", runs, confirm=False)
    assert purge_runs(None, runs, confirm=False)  # the archive's runs only
    assert (stray / "big.csv").is_file()


def linked_run(world) -> tuple[Path, Path]:
    """A run folder in runs/ that is a link to a run folder outside it."""
    target = world["elsewhere_run"]
    link = world["runs"] / "2026-11-27T11-00-00Z"
    link.symlink_to(target, target_is_directory=True)
    return link, target


def test_a_linked_run_is_deleted_as_a_link(world):
    link, target = linked_run(world)
    assert link.name in ls_runs(world["runs"])["id"].tolist()  # listed, read through the link
    assert purge_runs([link.name], world["runs"], confirm=False) == [link.name]
    assert not link.exists() and not link.is_symlink()
    assert (target / record.RUN_FILE).is_file()  # the target untouched


def test_a_linked_run_is_archived_and_restored_as_a_link(world):
    link, target = linked_run(world)
    moved = clean_runs(link.name, world["runs"])
    assert len(moved) == 1 and moved[0].is_symlink()
    assert (target / record.RUN_FILE).is_file() and target.parent.name == "other-runs"
    restored = restore_runs(link.name, world["runs"])
    assert restored[0].is_symlink() and (target / record.RUN_FILE).is_file()
    assert purge_runs(None, world["runs"], confirm=False) == []  # nothing archived now


def test_the_dashboard_deletes_a_linked_run_as_a_link(world):
    from trainrun.web.app import create_app

    link, target = linked_run(world)
    client = TestClient(
        create_app(world["runs"]),
        base_url="http://127.0.0.1",
        headers={"origin": "http://127.0.0.1"},
    )
    form = client.get(f"/runs/{link.name}/delete")
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text).group(1)
    done = client.post(f"/runs/{link.name}/delete", data={"token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert not link.is_symlink() and (target / record.RUN_FILE).is_file()


def test_restore_refuses_paths_outside_the_archive(world):
    with pytest.raises(RunNotFoundError):
        restore_runs(str(world["precious"]), world["runs"])
    with pytest.raises(RunNotFoundError):
        restore_runs("../../somewhere", world["runs"])
    assert intact(world)


def test_copy_keeps_inside_links_and_skips_outside_ones(world, tmp_path):
    run = world["runs"] / "2026-11-27T10-00-00Z"
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (run / "artifacts" / "model.bin").write_bytes(b"\0" * 10)
    (run / "artifacts" / "latest.bin").symlink_to("model.bin")  # inside: kept as a link
    (run / "artifacts" / "abs.bin").symlink_to(run / "artifacts" / "model.bin")  # inside, absolute
    (run / "output.log").symlink_to(secret)  # outside: skipped
    (run / "source" / "etc").symlink_to("/etc", target_is_directory=True)  # outside: skipped
    os.mkfifo(run / "plots" / "pipe")  # not a file: skipped
    with pytest.warns(UserWarning, match="without 3 entry"):
        copy = copy_run(run.name, tmp_path / "shared", runs_dir=world["runs"])
    assert os.readlink(copy / "artifacts" / "latest.bin") == "model.bin"
    assert (copy / "artifacts" / "abs.bin").is_symlink()
    assert (copy / "artifacts" / "abs.bin").resolve() == (
        copy / "artifacts" / "model.bin"
    ).resolve()
    assert not (copy / "output.log").exists() and not (copy / "source" / "etc").is_symlink()
    assert not (copy / "plots" / "pipe").exists()
    assert (copy / record.RUN_FILE).read_bytes() == (run / record.RUN_FILE).read_bytes()
    assert "password" not in "".join(
        p.read_text(errors="replace") for p in copy.rglob("*") if p.is_file() and not p.is_symlink()
    )


def test_an_archive_that_is_a_link_is_refused(world, tmp_path):
    outside = tmp_path / "outside-archive"
    outside.mkdir()
    victim = write_run(outside, "2026-11-27T08-00-00Z")
    (world["runs"] / "archive").symlink_to(outside, target_is_directory=True)
    for act in (
        lambda: purge_runs(None, world["runs"], confirm=False),
        lambda: purge_runs([victim.name], world["runs"], confirm=False),
        lambda: clean_runs(None, world["runs"]),
        lambda: restore_runs(None, world["runs"]),
    ):
        with pytest.raises(RunRecordError, match="is a link"):
            act()
    assert (victim / record.RUN_FILE).is_file() and intact(world)
    assert not list(outside.glob("2026-11-27T10-*"))  # no run moved out through the link
