import subprocess
import sys

import trainrun


def test_all_is_sorted_and_each_name_is_what_its_module_defines():
    import importlib
    import inspect
    import types

    assert trainrun.__all__ == sorted(trainrun.__all__)
    exports = trainrun._EXPORTS
    assert set(trainrun.__all__) == {*exports, "__version__"}
    assert isinstance(trainrun.__version__, str) and trainrun.__version__[0].isdigit()
    for name, module in exports.items():
        value = getattr(trainrun, name)
        # the lazy loader hands out the module's own object, never a submodule by that name
        assert value is getattr(importlib.import_module(module), name), name
        assert not isinstance(value, types.ModuleType), name
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__name__ == name, (name, value)


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


def test_subpackages_resolve_after_a_plain_import():
    # as the docs write it: `import trainrun` then `trainrun.runs.active.tensorboard_dir()`
    code = (
        "import sys, trainrun\n"
        "assert trainrun.runs.active.tensorboard_dir() is None\n"
        "assert trainrun.runs.active.model_dir() is None\n"
        "assert 'torch' not in sys.modules, 'the runs half imported torch'\n"
        "for bad in ('nope', 'runs.nope'):\n"
        "    obj = trainrun\n"
        "    try:\n"
        "        for part in bad.split('.'):\n"
        "            obj = getattr(obj, part)\n"
        "    except AttributeError:\n"
        "        continue\n"
        "    raise SystemExit(f'{bad} resolved to {obj!r}')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
