import subprocess
import sys

import trainrun


def test_all_is_sorted_and_resolves():
    assert trainrun.__all__ == sorted(trainrun.__all__)
    for name in trainrun.__all__:
        assert getattr(trainrun, name) is not None, name


def test_errors_subclass_builtin_exceptions():
    assert issubclass(trainrun.FlagError, ValueError)
    assert issubclass(trainrun.RunNotFoundError, FileNotFoundError)
    assert issubclass(trainrun.MissingExtraError, ImportError)
    err = trainrun.MissingExtraError("ray", "ray", "backend='ray'")
    assert "pip install 'trainrun[ray]'" in str(err)


def test_import_does_not_load_torch():
    code = "import sys, trainrun, trainrun.runs.record; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
