"""Input functions, second step of the estimators' flow: feed a DataFrame, arrays, an Arrow
table or CSV / Parquet files to a model, encoded once by the feature columns.

>>> import pandas as pd
>>> from trainrun.inputs import input_fn
>>> fn = input_fn(pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), response="y")
>>> fn.num_rows, fn.features
(2, ['x'])
"""

from __future__ import annotations

from trainrun.inputs._input_fn import Batch, InputFn, input_fn

__all__ = ["Batch", "InputFn", "input_fn"]
