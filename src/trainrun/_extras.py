"""Optional parts of trainrun and the extras that install them.

``pip install trainrun`` is the runs half (flags, runs, listing, reports,
tuning, the CLI and the dashboard). Everything else is an extra, and a missing
one is named in a :class:`~trainrun.exceptions.MissingExtraError` (an
ImportError), never a raw ``No module named 'torch'``::

    extra          what it adds                              checked when
    estimators     torch, safetensors, pyarrow, matplotlib,  import trainrun.estimators (and
                   tensorboard                                the rest of the estimator half)
    board          tensorboard                               trainrun board, write_hparams()
    ray, optuna    the tuning back ends                      tuning_run(backend="ray"), optuna_search()
    keras, lightning, sklearn, transformers                  import trainrun.keras, ...

The estimator half is guarded by a finder on ``sys.meta_path`` (installed by
``trainrun/__init__.py``) rather than by a line in each of its packages: it
answers only for those six package names, and only looks for torch then.

>>> from trainrun._extras import missing
>>> missing("json", "board", "a feature") is None     # installed: nothing to say
True
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

    from trainrun.exceptions import MissingExtraError

#: The estimator half's packages: importing any of them needs the [estimators] extra.
ESTIMATOR_PACKAGES = frozenset(
    "trainrun." + name
    for name in ("estimators", "feature_columns", "inputs", "modules", "training", "model_dir")
)
#: What the estimator half imports when it loads (the rest of the extra is imported on use).
ESTIMATOR_IMPORTS = ("torch", "safetensors")
TORCH_HINT = (
    "; for the CPU build of torch (about 1 GB instead of several GB of CUDA wheels), "
    "install torch first: pip install torch==2.13.0 --index-url "
    "https://download.pytorch.org/whl/cpu"
)

_present: dict[str, bool] = {}


def installed(module: str) -> bool:
    """True when ``module`` can be imported (found on the path; nothing is imported)."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None: an import known to fail
    found = _present.get(module)
    if found is None:
        from importlib.util import find_spec

        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        _present[module] = found
    return found


def missing(
    module: str, extra: str, feature: str, package: str | None = None
) -> MissingExtraError | None:
    """The error to raise when ``module`` is not installed, or None when it is.

    ``package`` is the name pip knows it by, when that differs from the module's
    (``scikit-learn`` for ``sklearn``).
    """
    if installed(module):
        return None
    from trainrun.exceptions import MissingExtraError

    hint = TORCH_HINT if module == "torch" else ""
    return MissingExtraError(package or module, extra, feature, hint=hint)


def require(module: str, extra: str, feature: str, package: str | None = None) -> None:
    """Raise MissingExtraError naming ``extra`` when ``module`` is not installed.

    >>> require("json", "board", "trainrun board")   # installed: returns None
    """
    error = missing(module, extra, feature, package)
    if error is not None:
        raise error


class EstimatorsFinder:
    """A ``sys.meta_path`` finder that names the [estimators] extra when torch is missing.

    It finds nothing itself: for one of :data:`ESTIMATOR_PACKAGES` it checks the
    extra's imports and raises, and otherwise lets the normal finders work.
    """

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name in ESTIMATOR_PACKAGES:
            for module in ESTIMATOR_IMPORTS:
                require(module, "estimators", f"import {name}")
        return None


def install_finder() -> None:
    """Put one :class:`EstimatorsFinder` first on ``sys.meta_path`` (idempotent)."""
    # by name: a reimported trainrun (tests) brings a second class of the same name
    if not any(type(f).__name__ == "EstimatorsFinder" for f in sys.meta_path):
        sys.meta_path.insert(0, EstimatorsFinder())
