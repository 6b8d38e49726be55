"""Input functions: feed a DataFrame, arrays, an Arrow table or CSV / Parquet files to a model.

>>> import pandas as pd
>>> from trainrun.inputs import input_fn
>>> fn = input_fn(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), response="y")
>>> fn.num_rows, fn.features
(2, ['x'])
"""

from __future__ import annotations

from trainrun.inputs._input_fn import Batch, InputFn, input_fn

__all__ = ["Batch", "InputFn", "input_fn"]
