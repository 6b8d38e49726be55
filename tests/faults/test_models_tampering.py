"""Tampered and damaged model directories and exports: each a ModelDirError naming the file
and the problem, never a raw JSONDecodeError, KeyError, SafetensorError or AttributeError;
nothing read from outside the folder; no size in a spec allocated before the weights confirm it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import trainrun
import trainrun.feature_columns as fc
from trainrun.exceptions import ModelDirError
from trainrun.model_dir import _checks
from trainrun.model_dir.checkpoints import latest_checkpoint, load_checkpoint

QUIET = trainrun.RunConfig(progress=False, seed=0)
K = fc.categorical_column_with_vocabulary_list("k", ["a", "b"])
COLUMNS = [fc.numeric_column("x"), fc.indicator_column(K)]
FRAME = pd.DataFrame({"x": np.linspace(0, 1, 64), "k": ["a", "b"] * 32, "y": np.arange(64) % 2})


def _estimator(model_dir: Path) -> trainrun.DNNClassifier:
    return trainrun.DNNClassifier(
        hidden_units=[8], feature_columns=COLUMNS, model_dir=model_dir, config=QUIET
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained model directory (``model``) and its export (``export``), made once."""
    root = tmp_path_factory.mktemp("pristine")
    est = _estimator(root / "model")
    est.train(trainrun.input_fn(FRAME, response="y"), steps=3)
    est.export(root / "export")
    return root


@pytest.fixture
def model_dir(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine / "model", tmp_path / "model"))


@pytest.fixture
def export_dir(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine / "export", tmp_path / "export"))


def _latest(model_dir: Path) -> str:
    return json.loads((model_dir / "checkpoint.json").read_text())["latest"]


def _restore(model_dir: Path) -> None:
    """What a user does with a model directory: build the estimator over it and use it."""
    _estimator(model_dir).evaluate(trainrun.input_fn(FRAME, response="y", shuffle=False))


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _edit_tensors(path: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def _first_weight(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(k for k in tensors if k.endswith("weight"))[0]


# ----------------------------------------------------------------- the checkpoint index


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"latest": "ckpt-3", ', "is not valid JSON"),
        (b'{"latest": "\xff\xfe"}', "is not UTF-8"),
        (b'["ckpt-3"]', "must hold a JSON object; it holds a list"),
        (b'{"latest": 3, "all": []}', "the field 'latest' must be a string or null"),
        (b'{"latest": "ckpt-3", "all": "ckpt-3"}', "the field 'all' must be a list"),
        (b'{"latest": "ckpt-3", "all": [7]}', "names 7, which is not a checkpoint"),
        (b'{"all": []}', "lacks the field 'latest'"),
    ],
    ids=["truncated", "not-utf8", "a-list", "latest-int", "all-string", "all-int", "no-latest"],
)
def test_a_damaged_checkpoint_index_is_a_model_dir_error_naming_it(
    model_dir: Path, content: bytes, problem: str
) -> None:
    (model_dir / "checkpoint.json").write_bytes(content)
    with pytest.raises(ModelDirError, match="checkpoint index") as info:
        _restore(model_dir)
    assert str(model_dir / "checkpoint.json") in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize("target", ["../outside/ckpt-3", "/etc/passwd", "ckpt-3/../../x"])
def test_the_index_cannot_point_outside_the_model_directory(
    model_dir: Path, tmp_path: Path, target: str
) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(model_dir, outside)  # a valid checkpoint, but not this folder's
    _edit_json(model_dir / "checkpoint.json", lambda d: {**d, "latest": target})
    with pytest.raises(ModelDirError, match=r"which is not a checkpoint of this folder \(ckpt-N\)"):
        latest_checkpoint(model_dir)
    with pytest.raises(ModelDirError, match="refused"):
        _restore(model_dir)


@pytest.mark.parametrize("linked", ["json", "safetensors", "index"])
def test_a_checkpoint_file_linked_to_outside_is_refused(
    model_dir: Path, tmp_path: Path, linked: str
) -> None:
    name = {"json": f"{_latest(model_dir)}.json", "index": "checkpoint.json"}.get(
        linked, f"{_latest(model_dir)}.safetensors"
    )
    elsewhere = tmp_path / f"elsewhere-{name}"
    shutil.move(model_dir / name, elsewhere)
    os.symlink(elsewhere, model_dir / name)
    with pytest.raises(ModelDirError, match="leads outside its folder") as info:
        _restore(model_dir)
    assert name in str(info.value) and str(elsewhere) in str(info.value)


def test_an_index_naming_a_missing_checkpoint_is_an_error_not_a_fresh_start(
    model_dir: Path,
) -> None:
    latest = _latest(model_dir)
    (model_dir / f"{latest}.json").unlink()
    with pytest.raises(ModelDirError, match=f"{latest}.json is missing"):
        _restore(model_dir)
    # nothing was trained over it: the folder still has no new checkpoint
    assert not (model_dir / f"{latest}.json").exists()


# ----------------------------------------------------------------- a checkpoint's JSON


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda m: "{not json", "is not valid JSON"),
        (lambda m: [m], "must hold a JSON object; it holds a list"),
        (lambda m: {k: v for k, v in m.items() if k != "global_step"}, "lacks the field"),
        (lambda m: {**m, "global_step": "3"}, "'global_step' must be an integer"),
        (lambda m: {**m, "global_step": True}, "'global_step' must be an integer"),
        (lambda m: {**m, "global_step": -1}, "global_step must be >= 0"),
        (lambda m: {**m, "architecture": ["dnn"]}, "'architecture' must be an object"),
        (lambda m: {**m, "optimizers": {"0": 1}}, "'optimizers' must be a list"),
        (lambda m: {**m, "optimizers": [{"scalars": {}}]}, "lacks the field 'param_groups'"),
    ],
    ids=[
        "not-json",
        "a-list",
        "no-step",
        "step-string",
        "step-bool",
        "step-negative",
        "architecture-list",
        "optimizers-dict",
        "no-param-groups",
    ],
)
def test_a_damaged_checkpoint_json_is_a_model_dir_error_naming_it(
    model_dir: Path, change: Callable[[Any], Any], problem: str
) -> None:
    path = model_dir / f"{_latest(model_dir)}.json"
    meta = json.loads(path.read_text())
    new = change(meta)
    path.write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(ModelDirError) as info:
        _restore(model_dir)
    assert str(path) in str(info.value) and problem in str(info.value)


# ----------------------------------------------------------------- a checkpoint's tensors


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(b"\x00" * 7), "is not a readable safetensors file"),
        (lambda p: p.write_bytes(p.read_bytes()[:-5]), "is not a readable safetensors file"),
        (lambda p: p.write_bytes(b"\xff" * 8 + b"{}"), "is not a readable safetensors file"),
    ],
    ids=["missing", "garbage", "truncated", "huge-header-length"],
)
def test_a_damaged_weights_file_is_a_model_dir_error_naming_it(
    model_dir: Path, damage: Callable[[Path], None], problem: str
) -> None:
    path = model_dir / f"{_latest(model_dir)}.safetensors"
    damage(path)
    with pytest.raises(ModelDirError) as info:
        load_checkpoint(model_dir)
    assert str(path) in str(info.value) and problem in str(info.value)
    with pytest.raises(ModelDirError, match=problem):
        _restore(model_dir)


def _drop(t: dict[str, torch.Tensor]) -> None:
    del t[_first_weight(t)]


def _extra(t: dict[str, torch.Tensor]) -> None:
    t["backdoor.weight"] = torch.zeros(2)


def _reshape(t: dict[str, torch.Tensor]) -> None:
    key = _first_weight(t)
    t[key] = torch.zeros(t[key].shape[0] + 1, *t[key].shape[1:])


def _retype(t: dict[str, torch.Tensor]) -> None:
    key = _first_weight(t)
    t[key] = t[key].to(torch.float64)


TENSOR_TAMPERING = [
    (_drop, r"it lacks tensors \['layers.0.weight'\]"),
    (_extra, r"it has tensors this model does not: \['backdoor.weight'\]"),
    (_reshape, r"tensor 'layers.0.weight' has shape \[9, 3\], the model needs \[8, 3\]"),
    (_retype, r"tensor 'layers.0.weight' is float64, the model needs float32 \(refused"),
]
TENSOR_IDS = ["missing-tensor", "extra-tensor", "wrong-shape", "wrong-dtype"]


@pytest.mark.parametrize(("tamper", "problem"), TENSOR_TAMPERING, ids=TENSOR_IDS)
def test_checkpoint_weights_that_do_not_fit_are_refused(
    model_dir: Path, tamper: Callable[[dict[str, torch.Tensor]], None], problem: str
) -> None:
    path = model_dir / f"{_latest(model_dir)}.safetensors"
    _edit_tensors(path, tamper)
    with pytest.raises(ModelDirError, match=problem) as info:
        _restore(model_dir)
    assert str(path) in str(info.value)


def test_optimizer_state_of_the_wrong_shape_is_refused_before_training(model_dir: Path) -> None:
    path = model_dir / f"{_latest(model_dir)}.optim.safetensors"

    def grow(t: dict[str, torch.Tensor]) -> None:
        key = next(k for k in sorted(t) if t[k].dim() > 0)
        t[key] = torch.zeros(t[key].numel() + 3)

    _edit_tensors(path, grow)
    with pytest.raises(ModelDirError, match="optimizer state in .* refused") as info:
        _estimator(model_dir).train(trainrun.input_fn(FRAME, response="y"), steps=1)
    assert str(path) in str(info.value)


def test_a_garbage_optimizer_state_file_is_a_model_dir_error(model_dir: Path) -> None:
    path = model_dir / f"{_latest(model_dir)}.optim.safetensors"
    path.write_bytes(b"not safetensors at all")
    with pytest.raises(ModelDirError, match="Optimizer state file .* not a readable"):
        _restore(model_dir)


def test_an_untouched_model_directory_still_restores(model_dir: Path) -> None:
    """The checks refuse only what is wrong: the pristine copy evaluates and predicts."""
    est = _estimator(model_dir)
    metrics = est.evaluate(trainrun.input_fn(FRAME, response="y", shuffle=False))
    assert metrics["global_step"] == load_checkpoint(model_dir).global_step > 0


# ----------------------------------------------------------------- exports


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: "{", "is not valid JSON"),
        (lambda s: [s], "must hold a JSON object; it holds a list"),
        (lambda s: {**s, "format": None}, "'format' must be a string"),
        (lambda s: {**s, "format": "trainrun.export/99"}, "this trainrun reads"),
        (lambda s: {k: v for k, v in s.items() if k != "network"}, "lacks the field 'network'"),
        (lambda s: {**s, "columns": ["x"]}, "'columns' must be an object"),
        (lambda s: {**s, "columns": {"dnn": "x"}}, "holds unusable columns or head"),
        (lambda s: {**s, "columns": {"dnn": [{"type": "nope"}]}}, "unusable feature columns"),
        (lambda s: {**s, "head": {"kind": "nope"}}, "holds unusable columns or head"),
        (lambda s: {**s, "network": {"type": "dnn"}}, "cannot be built"),
        (lambda s: {**s, "network": {**s["network"], "type": "rnn"}}, "cannot be built"),
        (
            lambda s: {**s, "network": {**s["network"], "hidden_units": [[8]]}},
            "cannot be built",
        ),
    ],
    ids=[
        "not-json",
        "a-list",
        "format-null",
        "format-other",
        "no-network",
        "columns-list",
        "part-not-list",
        "unknown-column",
        "unknown-head",
        "network-incomplete",
        "network-unknown",
        "units-nested",
    ],
)
def test_a_damaged_export_spec_is_a_model_dir_error_naming_it(
    export_dir: Path, change: Callable[[Any], Any], problem: str
) -> None:
    path = export_dir / "spec.json"
    new = change(json.loads(path.read_text()))
    path.write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(ModelDirError) as info:
        trainrun.load_exported(export_dir)
    assert str(path) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize(("tamper", "problem"), TENSOR_TAMPERING, ids=TENSOR_IDS)
def test_export_weights_that_do_not_fit_the_spec_are_refused(
    export_dir: Path, tamper: Callable[[dict[str, torch.Tensor]], None], problem: str
) -> None:
    path = export_dir / "model.safetensors"
    _edit_tensors(path, tamper)
    with pytest.raises(ModelDirError, match=problem) as info:
        trainrun.load_exported(export_dir)
    assert str(path) in str(info.value)


def test_a_damaged_export_weights_file_is_a_model_dir_error(export_dir: Path) -> None:
    (export_dir / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad")
    with pytest.raises(ModelDirError, match="model.safetensors is not a readable safetensors"):
        trainrun.load_exported(export_dir)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda s: {**s, "network": {**s["network"], "hidden_units": [2**31]}},
            r"asks for network.hidden_units\[0\]=2,147,483,648, but its weights hold only 41",
        ),
        (
            lambda s: {**s, "network": {**s["network"], "hidden_units": [4] * 1_000_000}},
            "lists 1,000,000 entries in network.hidden_units",
        ),
        (  # the size hides in a feature column: the network built on no memory tells
            lambda s: {
                **s,
                "columns": {
                    "dnn": [
                        {**c, "shape": [2**31]} if c["type"] == "numeric_column" else c
                        for c in s["columns"]["dnn"]
                    ]
                },
            },
            r"tensor 'layers.0.weight' has shape \[8, 3\], the model needs \[8, 2147483650\]",
        ),
    ],
    ids=["units-2**31", "a-million-layers", "column-shape-2**31"],
)
def test_sizes_in_a_spec_are_bounded_before_allocating(
    export_dir: Path, change: Callable[[Any], Any], problem: str
) -> None:
    path = export_dir / "spec.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    start = time.monotonic()
    with pytest.raises(ModelDirError, match=problem):
        trainrun.load_exported(export_dir)
    # 2**31 units of a float32 layer over 3 inputs is 32 GB: allocating it (or building
    # a million layers) would take far longer than refusing it
    assert time.monotonic() - start < 5.0


def test_an_export_spec_linked_to_outside_is_refused(export_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    shutil.move(export_dir / "spec.json", elsewhere)
    os.symlink(elsewhere, export_dir / "spec.json")
    with pytest.raises(ModelDirError, match="leads outside its folder"):
        trainrun.load_exported(export_dir)


def test_an_oversized_spec_is_refused_before_it_is_parsed(
    export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = (export_dir / "spec.json").stat().st_size
    monkeypatch.setattr(_checks, "MAX_JSON_BYTES", size - 1)
    with pytest.raises(ModelDirError, match=f"spec.json is {size:,} bytes; the limit is"):
        trainrun.load_exported(export_dir)


def test_an_untouched_export_still_loads_and_predicts(export_dir: Path, pristine: Path) -> None:
    served = trainrun.load_exported(export_dir)
    out = served.predict_frame(FRAME.drop(columns="y"))
    expected = (
        _estimator(pristine / "model")
        .predict_frame(trainrun.input_fn(FRAME.drop(columns="y"), shuffle=False))["logits"]
        .to_numpy()
    )
    np.testing.assert_allclose(out["logits"].to_numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("damaged", ["spec.json", "model.safetensors"])
def test_warm_starting_from_a_damaged_export_is_a_model_dir_error(
    export_dir: Path, tmp_path: Path, damaged: str
) -> None:
    (export_dir / damaged).write_bytes(b"\x00garbage")
    est = trainrun.DNNClassifier(
        hidden_units=[8],
        feature_columns=COLUMNS,
        model_dir=tmp_path / "fresh",
        warm_start_from=export_dir,
        config=QUIET,
    )
    with pytest.raises(ModelDirError, match=damaged) as info:
        est.train(trainrun.input_fn(FRAME, response="y"), steps=1)
    assert "is not" in str(info.value)  # not valid JSON / not a readable safetensors file
