"""A missing extra is named, never a raw ImportError (trainrun._extras)."""

import subprocess
import sys

import pytest

from trainrun._extras import EstimatorsFinder, installed, missing


def _python(code, *args):
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "statement",
    ["import trainrun.estimators", "import trainrun.training.callbacks", "trainrun.DNNClassifier"],
)
def test_the_estimator_half_without_torch_names_the_estimators_extra(statement):
    # sys.modules[name] = None is how Python marks a module that cannot be imported
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import trainrun\n"
        f"try:\n    {statement}\n"
        "except ImportError as e:\n    print(type(e).__name__ + ': ' + str(e))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("MissingExtraError: ")
    assert "pip install 'trainrun[estimators]'" in out.stdout
    assert "torch==2.13.0" in out.stdout  # the CPU-build hint


def test_the_runs_half_works_without_torch(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import trainrun as tr\n"
        "from trainrun.runs import active, record\n"
        "folder = record.new_run_dir(sys.argv[1])\n"
        "record.write_json(folder / 'run.json', {'id': folder.name, 'status': 'completed'})\n"
        "with active.activate(folder):\n"
        "    tr.log_metrics(step=1, loss=0.5)\n"
        "print(len(tr.ls_runs(runs_dir=sys.argv[1])))\n"
    )
    out = _python(code, str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_trainrun_board_without_tensorboard_says_which_extra(tmp_path):
    (tmp_path / "runs").mkdir()
    code = (
        "import sys; sys.modules['tensorboard'] = None\n"
        "from trainrun.cli import main\n"
        "sys.exit(main(['board', sys.argv[1]]))\n"
    )
    out = _python(code, str(tmp_path / "runs"))
    assert out.returncode == 1
    assert (
        "trainrun: error: serving TensorBoard needs the optional package 'tensorboard'"
        in out.stderr
    )
    assert "pip install 'trainrun[board]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_write_hparams_without_tensorboard_raises_the_named_extra(tmp_path):
    code = (
        "import sys; sys.modules['tensorboard'] = None\n"
        "from trainrun.runs.tensorboard import write_hparams\n"
        "try:\n    write_hparams(sys.argv[1])\n"
        "except ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = _python(code, str(tmp_path))
    assert out.stdout.startswith("MissingExtraError"), out.stderr
    assert "trainrun[board]" in out.stdout


def test_installed_and_missing_answer_without_importing():
    assert installed("json") and missing("json", "board", "x") is None
    assert not installed("surely_not_a_module_xyz")
    error = missing("surely_not_a_module_xyz", "board", "the feature", package="pkg")
    assert isinstance(error, ImportError)
    assert "the feature needs the optional package 'pkg'" in str(error)


def test_the_finder_is_installed_once_and_finds_nothing_itself():
    import trainrun  # noqa: F401

    finders = [f for f in sys.meta_path if type(f).__name__ == "EstimatorsFinder"]
    assert len(finders) == 1
    assert EstimatorsFinder().find_spec("json") is None
    assert EstimatorsFinder().find_spec("trainrun.estimators") is None  # torch is installed here
