"""Grid expansion, sampling, tables of trials, the tuning id and flag matching (no processes)."""

import numpy as np
import pandas as pd
import pytest

from trainrun.runs.tuning._trials import (
    Trial,
    build_trials,
    expand_grid,
    flags_match,
    same_value,
    sample_count,
    tuning_id_for,
)


def test_grid_is_every_combination_in_a_fixed_order():
    grid = expand_grid({"dropout": [0.1, 0.2], "layer1": [64, 128, 256]})
    assert len(grid) == 6
    assert grid[0] == {"dropout": 0.1, "layer1": 64}
    assert grid[1] == {"dropout": 0.1, "layer1": 128}  # the last flag varies fastest
    assert grid[-1] == {"dropout": 0.2, "layer1": 256}
    assert grid == expand_grid({"dropout": [0.1, 0.2], "layer1": [64, 128, 256]})


def test_grid_accepts_tuples_ranges_and_numpy_and_unwraps_numpy_scalars():
    grid = expand_grid({"a": (1, 2), "b": range(2), "c": np.array([0.5])})
    assert len(grid) == 4
    assert type(grid[0]["c"]) is float and grid[0]["c"] == 0.5


@pytest.mark.parametrize(
    "flags, fragment",
    [
        ({"dropout": 0.1}, "wrap a single value in a list: dropout=[0.1]"),
        ({"activation": "relu"}, "activation=['relu']"),
        ({"dropout": []}, "empty list"),
        ({1: [0.1]}, "string flag names"),
        ({"x": [{"a": 1}]}, "Flag values must be strings, numbers"),
        ({}, "is empty"),
        ([("dropout", [0.1])], "must be a dict"),
    ],
)
def test_bad_grids_get_clear_errors(flags, fragment):
    with pytest.raises(ValueError, match="Received") as info:
        build_trials(flags, None)
    assert fragment in str(info.value)


def test_flags_and_trials_together_or_neither_are_errors():
    with pytest.raises(ValueError, match="not both"):
        build_trials({"a": [1]}, [{"a": 1}])
    with pytest.raises(ValueError, match="Received neither"):
        build_trials(None, None)


def test_trials_are_numbered_by_their_grid_position():
    trials = build_trials({"a": [1, 2, 3]}, None)
    assert [t.number for t in trials] == [1, 2, 3]
    assert trials[2].flags == {"a": 3}


def test_sampling_is_without_replacement_reproducible_and_in_grid_order():
    grid = {"a": list(range(10)), "b": ["x", "y"]}
    one = build_trials(grid, None, sample=0.25, seed=7)
    two = build_trials(grid, None, sample=0.25, seed=7)
    other = build_trials(grid, None, sample=0.25, seed=8)
    assert len(one) == 5  # round(0.25 * 20)
    assert one == two and [t.flags for t in one] == [t.flags for t in two]
    assert [t.number for t in one] != [t.number for t in other]
    numbers = [t.number for t in one]
    assert numbers == sorted(set(numbers))
    counted = build_trials(grid, None, sample=3, seed=1)
    assert len(counted) == 3
    assert len(build_trials(grid, None, sample=1.0)) == 20


@pytest.mark.parametrize("sample", [0.0, 1.5, -1, 0, 21, True, "half"])
def test_bad_samples_are_errors(sample):
    with pytest.raises(ValueError, match="sample"):
        sample_count(sample, 20)


def test_a_table_of_trials_from_a_dataframe_or_list():
    df = pd.DataFrame({"dropout": [0.1, 0.3], "layer1": [128, np.nan]})
    trials = build_trials(None, df)
    assert [t.flags for t in trials] == [{"dropout": 0.1, "layer1": 128.0}, {"dropout": 0.3}]
    listed = build_trials(None, [{"a": 1}, {"a": 2, "b": "relu"}])
    assert listed[1] == Trial(2, {"a": 2, "b": "relu"})
    with pytest.raises(ValueError, match="Trial 2 in 'trials' must be a dict"):
        build_trials(None, [{"a": 1}, 5])
    with pytest.raises(ValueError, match="holds no trials"):
        build_trials(None, [])
    with pytest.raises(ValueError, match="DataFrame or a list of dicts"):
        build_trials(None, "a=1")


def test_tuning_id_is_stable_and_depends_on_script_and_trials(tmp_path):
    script = tmp_path / "train.py"
    trials = build_trials({"a": [1, 2]}, None)
    first = tuning_id_for(script, trials)
    assert first == tuning_id_for(script, build_trials({"a": [1, 2]}, None))
    assert first.startswith("train-")
    assert first != tuning_id_for(script, build_trials({"a": [1, 3]}, None))
    assert first != tuning_id_for(tmp_path / "other.py", trials)


def test_recorded_values_match_what_the_trial_asked_for():
    assert same_value(0.1, 0.1)
    assert same_value("0.1", 0.1)
    assert same_value(128, 128.0)
    assert same_value("true", True)
    assert same_value("relu", "relu")
    assert not same_value(0.1, 0.2)
    assert not same_value("relu", "tanh")
    assert flags_match({"dropout": 0.1}, {"dropout": 0.1, "layer1": 64})
    assert flags_match({"learning-rate": 0.1}, {"learning_rate": 0.1})
    assert not flags_match({"dropout": 0.1}, {"layer1": 64})
