"""flags(): declarations, precedence, the command line, flags.yml, --help and every error."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainrun.exceptions import FlagError
from trainrun.runs import record
from trainrun.runs.active import activate
from trainrun.runs.flags import (
    Flags,
    flag_boolean,
    flag_integer,
    flag_numeric,
    flag_string,
    flags,
    parse_flags,
)

DECL = [
    flag_numeric("dropout", 0.2, "Dropout rate"),
    flag_integer("layer1", 256, "Units"),
    flag_boolean("batch_norm", False),
    flag_string("activation", "relu", choices=["relu", "tanh"]),
    {"learning_rate": 0.01},
]


def parse(argv=(), **kw):
    kw.setdefault("file", False)
    kw.setdefault("overrides", {})
    kw.setdefault("record", False)
    return parse_flags(DECL, argv=list(argv), **kw)


def test_defaults_and_access():
    f = parse()
    assert f.dropout == 0.2 and f["layer1"] == 256 and f.batch_norm is False
    assert f["learning-rate"] == 0.01
    assert dict(f) == {
        "dropout": 0.2,
        "layer1": 256,
        "batch_norm": False,
        "activation": "relu",
        "learning_rate": 0.01,
    }
    assert set(f.sources.values()) == {"default"}
    assert repr(f).startswith("Flags(dropout=0.2, layer1=256")
    assert pickle.loads(pickle.dumps(f)) == f
    with pytest.raises(AttributeError, match="read-only"):
        f.dropout = 0.5
    with pytest.raises(AttributeError, match="Did you mean 'dropout'"):
        f.dropuot  # noqa: B018
    with pytest.raises(KeyError, match="Declared flags"):
        f["nope"]


def test_inferred_types():
    f = parse_flags([], argv=[], file=False, overrides={}, record=False)
    assert len(f) == 0
    f = parse_flags(
        [{"a": 1, "b": 1.5, "c": True, "d": "x", "e": None}],
        argv=["--a", "7", "--b=2", "--c", "no", "--e", "set"],
        file=False,
        overrides={},
        record=False,
    )
    assert f.as_dict() == {"a": 7, "b": 2.0, "c": False, "d": "x", "e": "set"}
    assert isinstance(f.b, float)
    assert f.declared["c"].type == "boolean"


def test_command_line_forms():
    f = parse(
        [
            "--dropout",
            "0.1",
            "--layer1=128",
            "--learning-rate",
            "1e-3",
            "--batch-norm",
            "data.csv",
            "-v",
            "--",
            "--dropout",
            "9",
        ]
    )
    assert (f.dropout, f.layer1, f.learning_rate, f.batch_norm) == (0.1, 128, 0.001, True)
    # positional and single-dash arguments, and everything after '--', are the script's
    assert f.unparsed == ["data.csv", "-v", "--", "--dropout", "9"]
    assert f.sources["dropout"] == "command line"
    assert parse(["--batch-norm", "yes"]).batch_norm is True
    assert parse(["--batch-norm=0"]).batch_norm is False
    assert parse(["--no-batch-norm"]).batch_norm is False
    assert parse(["--layer1", "256.0"]).layer1 == 256
    assert parse(["--dropout", "-0.5"]).dropout == -0.5  # a value may start with '-'
    assert parse(["--dropout", "1", "--dropout", "2"]).dropout == 2.0  # the last one wins


def test_precedence_default_file_cli_run(tmp_path):
    flags_yml = tmp_path / "flags.yml"
    flags_yml.write_text("dropout: 0.3\nlayer1: 64\nactivation: tanh\n")
    f = parse(
        ["--layer1", "32", "--activation=relu"],
        file=flags_yml,
        overrides={"activation": "tanh"},
    )
    assert (f.dropout, f.layer1, f.activation, f.batch_norm) == (0.3, 32, "tanh", False)
    assert f.sources == {
        "dropout": "file",
        "layer1": "command line",
        "batch_norm": "default",
        "activation": "run",
        "learning_rate": "default",
    }


def test_profiles(tmp_path, monkeypatch):
    path = tmp_path / "flags.yml"
    path.write_text(
        textwrap.dedent(
            """\
            default:
              dropout: 0.3
              layer1: 64
            big:
              layer1: 1024
            """
        )
    )
    assert parse(file=path).layer1 == 64
    assert parse(file=path, profile="big").as_dict()["layer1"] == 1024
    assert parse(file=path, profile="big").dropout == 0.3  # laid over default
    monkeypatch.setenv("TRAINRUN_FLAGS_PROFILE", "big")
    assert parse(file=path).layer1 == 1024
    assert parse(["--flags-profile", "default"], file=path).layer1 == 64
    with pytest.raises(FlagError, match="no profile 'huge'.*Profiles: default, big"):
        parse(file=path, profile="huge")


def test_flags_file_found_beside_script_or_cwd(tmp_path, monkeypatch):
    (tmp_path / "flags.yml").write_text("dropout: 0.4\n")
    monkeypatch.chdir(tmp_path)
    f = parse_flags(DECL, argv=[], overrides={}, record=False)
    assert f.dropout == 0.4 and f.sources["dropout"] == "file"


@pytest.mark.parametrize(
    ("argv", "file_text", "overrides", "pattern"),
    [
        (["--dropuot", "0.1"], None, {}, r"Unknown flag 'dropuot'.*Did you mean '--dropout'"),
        (["--dropout", "abc"], None, {}, r"'dropout' expects a number.*Received: dropout='abc'"),
        (["--layer1", "2.5"], None, {}, r"'layer1' expects a whole number"),
        (["--batch-norm=maybe"], None, {}, r"'batch_norm' expects a boolean"),
        (["--activation", "sigmoid"], None, {}, r"must be one of 'relu', 'tanh'"),
        (["--layer1"], None, {}, r"--layer1 needs a value"),
        ([], "dropoutt: 0.1\n", {}, r"Unknown flag 'dropoutt' from the flags file"),
        ([], "layer1: [1, 2]\n", {}, r"'layer1' expects a whole number"),
        ([], "dropout: 0.1\nbig:\n  layer1: 2\n", {}, r"mixes flat flags and profiles"),
        ([], "dropout: [\n", {}, r"not valid YAML"),
        ([], None, {"nope": 1}, r"Unknown flag 'nope' from the training run"),
        ([], None, {"activation": "elu"}, r"must be one of"),
    ],
)
def test_errors(tmp_path, argv, file_text, overrides, pattern):
    path = None
    if file_text is not None:
        path = tmp_path / "flags.yml"
        path.write_text(file_text)
    with pytest.raises(FlagError, match=pattern):
        parse(argv, file=path if path else False, overrides=overrides)


@pytest.mark.parametrize(
    ("decls", "pattern"),
    [
        ([flag_numeric("lr", 0.1), {"lr": 0.2}], r"'lr' is declared twice"),
        ([{"learning-rate": 0.1}, {"learning_rate": 0.2}], r"declared twice"),
        ([{"layers": [1, 2]}], r"must be a number, a boolean, a string or None"),
        ([{"items": 1}], r"'items' is reserved"),
        ([{"help": True}], r"'help' is reserved"),
        ([{"2x": 1}], r"is not valid"),
        (["dropout"], r"takes declarations"),
    ],
)
def test_declaration_errors(decls, pattern):
    with pytest.raises(FlagError, match=pattern):
        parse_flags(decls, argv=[], file=False, overrides={}, record=False)


def test_declaration_checks():
    with pytest.raises(FlagError, match="must be one of"):
        flag_string("act", "elu", choices=["relu", "tanh"])
    with pytest.raises(FlagError, match="expects a whole number"):
        flag_integer("units", 2.5)
    assert flag_numeric("lr", 1).default == 1.0
    assert flag_integer("n", 3, choices=["1", 3]).choices == (1, 3)


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("TRAINRUN_FLAGS", json.dumps({"layer1": 8}))
    f = parse_flags(DECL, argv=[], file=False, record=False)
    assert f.layer1 == 8 and f.sources["layer1"] == "run"
    monkeypatch.setenv("TRAINRUN_FLAGS", "not json")
    with pytest.raises(FlagError, match="TRAINRUN_FLAGS must hold a JSON object"):
        parse_flags(DECL, argv=[], file=False, record=False)


def test_allow_unknown_keeps_options_for_the_script():
    f = parse(["--verbose", "--dropout", "0.5", "--out", "x.txt"], allow_unknown=True)
    assert f.dropout == 0.5
    assert f.unparsed == ["--verbose", "--out", "x.txt"]


def test_writes_flags_json_into_active_run(tmp_path):
    folder = record.new_run_dir(tmp_path / "runs")
    with activate(folder):
        parse_flags(DECL, argv=["--dropout", "0.5"], file=False, overrides={})
    data = record.read_json(folder / "flags.json")
    assert data["values"]["dropout"] == 0.5
    assert data["declared"]["activation"] == {
        "type": "string",
        "default": "relu",
        "description": "",
        "choices": ["relu", "tanh"],
    }
    assert data["sources"]["dropout"] == "command line"
    assert record.read_run(folder)["flags"]["layer1"] == 256


def test_help_in_process(capsys):
    with pytest.raises(SystemExit) as exc:
        parse(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--dropout" in out and "Dropout rate" in out and "relu, tanh" in out


# ---------------------------------------------------------------- as a real script

SCRIPT = """\
import json, sys
from trainrun import flags, flag_numeric, flag_string
FLAGS = flags(flag_numeric("dropout", 0.2, "Dropout rate"),
              flag_string("activation", "relu", "Activation", choices=["relu", "tanh"]),
              layer1=256)
print(json.dumps({"flags": dict(FLAGS), "rest": FLAGS.unparsed, "argv": sys.argv[1:]}))
"""


def run_script(tmp_path: Path, *argv: str, env=None):
    script = tmp_path / "train.py"
    if not script.exists():
        script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=env,
    )


def test_script_runs_plainly_and_with_flags(tmp_path):
    out = run_script(tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["flags"] == {"dropout": 0.2, "activation": "relu", "layer1": 256}
    (tmp_path / "flags.yml").write_text("layer1: 64\n")
    out = run_script(tmp_path, "--dropout=0.1", "input.csv")
    data = json.loads(out.stdout)
    assert data["flags"] == {"dropout": 0.1, "activation": "relu", "layer1": 64}
    assert data["rest"] == ["input.csv"]
    assert data["argv"] == ["--dropout=0.1", "input.csv"]  # sys.argv is left alone


def test_script_help_exits_0(tmp_path):
    out = run_script(tmp_path, "--help")
    assert out.returncode == 0
    assert "--dropout" in out.stdout and "Dropout rate" in out.stdout
    assert "--activation" in out.stdout and "relu, tanh" in out.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dropuot", "0.1"], "Did you mean '--dropout'"),
        (["--dropout", "high"], "expects a number"),
        (["--activation", "sigmoid"], "must be one of 'relu', 'tanh'"),
    ],
)
def test_script_errors_exit_2_without_traceback(tmp_path, argv, message):
    out = run_script(tmp_path, *argv)
    assert out.returncode == 2
    assert out.stderr.startswith("train.py: error: ")
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_script_declared_twice_exits_2(tmp_path):
    script = tmp_path / "twice.py"
    script.write_text(
        "from trainrun import flags, flag_numeric\nflags(flag_numeric('lr', 0.1), lr=0.2)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "'lr' is declared twice" in out.stderr and "Traceback" not in out.stderr


def test_flags_class_is_a_mapping():
    f = Flags({"a": 1}, {})
    assert f.get("a") == 1 and list(f.keys()) == ["a"] and "a" in dir(f)


def test_flags_under_pytest_ignores_pytests_argv(monkeypatch):
    from trainrun import flags
    from trainrun.runs import active

    # flags() records into the active run, or keeps the record for a later one: not here
    monkeypatch.setitem(active._pending, "flags", None)

    monkeypatch.setattr(sys, "argv", ["/venv/bin/pytest", "--durations=5", "-x", "tests"])
    monkeypatch.delenv("TRAINRUN_FLAGS", raising=False)
    f = flags(dropout=0.2)
    assert f.dropout == 0.2 and f.unparsed == []
    monkeypatch.setenv("TRAINRUN_FLAGS", '{"dropuot": 1}')
    with pytest.raises(FlagError, match="Did you mean '--dropout'"):
        flags(dropout=0.2)  # raised, not SystemExit: the host is pytest


BOMB = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *(
            f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_a_yaml_alias_bomb_in_flags_yml_is_refused_quickly(tmp_path):
    import time

    path = tmp_path / "flags.yml"
    path.write_text(BOMB)
    assert len(BOMB) < 400
    start = time.perf_counter()
    with pytest.raises(FlagError, match="expands to more than 100,000 values"):
        parse_flags([{"a": 1}], argv=[], file=path, record=False)
    assert time.perf_counter() - start < 2.0


def test_yaml_merge_keys_in_profiles_still_work(tmp_path):
    path = tmp_path / "flags.yml"
    path.write_text("default: &d {a: 2, b: 3}\nbig:\n  <<: *d\n  b: 9\n")
    assert parse_flags([{"a": 1, "b": 1}], argv=[], file=path, profile="big", record=False) == {
        "a": 2,
        "b": 9,
    }


def test_tfruns_argument_names_are_options_not_flags(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text("default: {dropout: 0.3}\nbig: {dropout: 0.5}\n")
    got = flags(dropout=0.1, file=str(path), config="big", arguments=["--units", "3"], units=1)
    assert dict(got) == {"dropout": 0.5, "units": 3}
    assert "file" not in got and "config" not in got
    assert dict(flags(dropout=0.1, file=False, arguments=[])) == {"dropout": 0.1}
    with pytest.raises(FlagError, match=r"arguments=\.\.\.\) takes a list"):
        flags(dropout=0.1, arguments="--dropout 0.2")
