"""Data for the examples: the bundled churn tables and a loader for MNIST-format IDX files.

The churn CSVs ship inside the package; their licence note is ``LICENSE.md``
beside them (MIT, from the R package modeldata). MNIST and Fashion-MNIST are
not bundled: point :func:`load_mnist` at a folder of the four standard files,
for example Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``).

>>> from trainrun.data import load_churn
>>> load_churn("wa_churn").shape
(7043, 20)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from trainrun.data._idx import read_idx, write_idx
from trainrun.exceptions import DataNotFoundError, InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CHURN_DATASETS",
    "FASHION_MNIST_DIR",
    "MNIST_FILES",
    "data_path",
    "find_mnist_files",
    "load_churn",
    "load_mnist",
    "read_idx",
    "write_idx",
]

_HERE = Path(__file__).resolve().parent

#: Bundled tables: name -> (file, target column, what it is)
CHURN_DATASETS: dict[str, tuple[str, str, str]] = {
    "wa_churn": ("wa_churn.csv", "churn", "IBM Watson telco customer churn, 7,043 rows"),
    "mlc_churn": ("mlc_churn.csv", "churn", "MLC++ telecom churn, 5,000 rows"),
}

#: Where Debian's ``dataset-fashion-mnist`` package puts the data.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: kind -> (images file, labels file), the standard names without ``.gz``.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_KIND_ALIASES = {"train": "train", "t10k": "t10k", "test": "t10k"}
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801


def data_path(name: str) -> Path:
    """The path of a file bundled in ``trainrun/data`` (e.g. ``"wa_churn.csv"``).

    >>> data_path("LICENSE.md").name
    'LICENSE.md'
    """
    path = _HERE / name
    if not path.is_file():
        available = sorted(p.name for p in _HERE.iterdir() if p.suffix in (".csv", ".md"))
        raise DataNotFoundError(
            f"trainrun has no bundled data file {name!r}. Available: {', '.join(available)}. "
            f"Received: name={name!r}"
        )
    return path


def load_churn(name: str = "wa_churn") -> pd.DataFrame:
    """Load a bundled churn table as a pandas DataFrame (target column ``churn``).

    ``wa_churn``: the telco customer churn data (7,043 rows; ``churn`` is
    "Yes"/"No"; ``total_charges`` has 11 missing values). ``mlc_churn``: the
    MLC++ churn data (5,000 rows; ``churn`` is "yes"/"no"). Both from the R
    package modeldata, MIT licence (see ``trainrun/data/LICENSE.md``).

    >>> df = load_churn("mlc_churn")
    >>> df["churn"].value_counts().to_dict()
    {'no': 4293, 'yes': 707}
    """
    import pandas as pd

    if name not in CHURN_DATASETS:
        raise InputError(
            f"Unknown churn data set. Expected one of {', '.join(map(repr, CHURN_DATASETS))}. "
            f"Received: name={name!r}"
        )
    filename = CHURN_DATASETS[name][0]
    return pd.read_csv(data_path(filename))


def find_mnist_files(data_dir: str | os.PathLike[str], kind: str = "train") -> tuple[Path, Path]:
    """The (images, labels) paths for ``kind`` in ``data_dir``, raw or ``.gz``.

    Accepts the standard names (``train-images-idx3-ubyte[.gz]``) and the
    dotted variant some mirrors use (``train-images.idx3-ubyte``). Raises
    FileNotFoundError listing the files it looked for.
    """
    kind_key = _KIND_ALIASES.get(kind)
    if kind_key is None:
        raise InputError(
            f"Unknown MNIST split. Expected 'train' or 't10k' (alias 'test'). Received: kind={kind!r}"
        )
    data_dir = Path(data_dir).expanduser()
    found: list[Path] = []
    missing: list[str] = []
    for base in MNIST_FILES[kind_key]:
        dotted = base.replace("-idx", ".idx")
        candidates = [base, base + ".gz", dotted, dotted + ".gz"]
        hit = next((data_dir / c for c in candidates if (data_dir / c).is_file()), None)
        if hit is None:
            missing.append(f"{base} or {base}.gz")
        else:
            found.append(hit)
    if missing:
        where = "does not exist" if not data_dir.is_dir() else "lacks " + "; ".join(missing)
        raise DataNotFoundError(
            f"No MNIST-format '{kind_key}' data in {data_dir}: the folder {where}. "
            f"Expected the files {MNIST_FILES[kind_key][0]}[.gz] and "
            f"{MNIST_FILES[kind_key][1]}[.gz] (IDX format, as published for MNIST and "
            "Fashion-MNIST). On Debian: apt-get install dataset-fashion-mnist, then "
            f"--data-dir {FASHION_MNIST_DIR}. Received: data_dir={str(data_dir)!r}"
        )
    return found[0], found[1]


def load_mnist(
    data_dir: str | os.PathLike[str] = FASHION_MNIST_DIR, kind: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST-format IDX files: ``(images uint8 [N, 28, 28], labels uint8 [N])``.

    ``kind`` is ``"train"`` or ``"t10k"`` (``"test"`` also works). Files may be
    raw or gzip-compressed. Magic numbers, sizes and the image/label counts are
    checked; a missing file raises FileNotFoundError naming the files expected.

    >>> import numpy as np, tempfile
    >>> d = tempfile.mkdtemp()
    >>> write_idx(f"{d}/t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8), compress=True)
    >>> write_idx(f"{d}/t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8), compress=True)
    >>> images, labels = load_mnist(d, kind="t10k")
    >>> images.shape, labels.tolist()
    ((3, 28, 28), [1, 2, 3])
    """
    images_path, labels_path = find_mnist_files(data_dir, kind)
    images = read_idx(images_path, expect_magic=_IMAGES_MAGIC, expect_shape=(None, 28, 28))
    labels = read_idx(labels_path, expect_magic=_LABELS_MAGIC, expect_shape=(None,))
    if images.shape[0] != labels.shape[0]:
        raise InputError(
            f"{images_path.name} holds {images.shape[0]:,} images but {labels_path.name} holds "
            f"{labels.shape[0]:,} labels; they must match. Were files from two data sets mixed "
            f"in {Path(data_dir)}?"
        )
    if labels.size and int(labels.max()) > 9:
        raise InputError(
            f"{labels_path} holds label {int(labels.max())}; MNIST-format labels are 0 to 9."
        )
    return images, labels
