"""Flags: a training script's settings, declared once, changed from outside.

A script declares its flags with defaults; the same script then runs plainly,
with other values on its command line, from a ``flags.yml`` profile, or as a
training run with overrides::

    from trainrun import flags, flag_numeric

    FLAGS = flags(flag_numeric("dropout", 0.2, "Dropout rate", choices=None),
                  layer1=256, activation="relu")
    FLAGS.dropout, FLAGS["layer1"]

Precedence, lowest first:

1. the declared defaults;
2. a flags file: ``flags.yml`` beside the script, else in the working folder.
   Either flat (``dropout: 0.1``) or named profiles (``default: {...}``,
   ``big: {...}``); a profile is chosen by ``--flags-profile NAME`` or the
   environment variable ``TRAINRUN_FLAGS_PROFILE`` and is laid over ``default``;
3. the command line: ``--dropout 0.1``, ``--dropout=0.1``; ``--learning-rate``
   means ``learning_rate``; a boolean flag alone means true, ``--no-NAME`` false;
4. overrides from ``training_run`` (environment variable ``TRAINRUN_FLAGS``, JSON).

Arguments that do not start with ``--`` (positional or single-dash) and
everything after a bare ``--`` are left to the script: ``FLAGS.unparsed``.
An undeclared ``--name`` is an error (a typo must not be silently ignored);
put options meant for the script's own parser after ``--``.

From the command line every problem prints one clear message and exits with
code 2; ``--help`` prints the flag table and exits 0. When a training run is
active, the resolved flags are written to the run's ``flags.json``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainrun.exceptions import FlagError
from trainrun.runs.flags._describe import DESCRIBE_ENV, describe_and_exit
from trainrun.runs.flags._sources import (
    FALSE_WORDS,
    FLAGS_ENV,
    OWN_OPTIONS,
    PROFILE_ENV,
    TRUE_WORDS,
    find_flags_file,
    format_flag_table,
    parse_argv,
    read_flags_file,
    read_overrides,
    undeclared,
)

__all__ = [
    "FLAG_TYPES",
    "FlagSpec",
    "Flags",
    "flag_boolean",
    "flag_integer",
    "flag_numeric",
    "flag_string",
    "flags",
    "parse_flags",
]

FLAG_TYPES = ("numeric", "integer", "boolean", "string")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Attribute names of Flags; a flag by one of these names could not be read as FLAGS.name.
_RESERVED = (
    "as_dict",
    "declared",
    "get",
    "items",
    "keys",
    "record",
    "sources",
    "unparsed",
    "values",
)


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class FlagSpec:
    """One declared flag: its name, type, default, description and allowed choices."""

    name: str
    type: str
    default: Any = None
    description: str = ""
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The declaration as written to flags.json."""
        return {
            "type": self.type,
            "default": self.default,
            "description": self.description,
            "choices": list(self.choices) if self.choices is not None else None,
        }


def _normalize_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise FlagError(f"A flag name must be a non-empty string. Received: name={name!r}")
    key = name.strip().lstrip("-").replace("-", "_")
    if not _NAME.match(key):
        raise FlagError(
            f"The flag name {name!r} is not valid: use letters, digits, '_' or '-', "
            f"not starting with a digit. Received: name={name!r}"
        )
    if key in _RESERVED or key in OWN_OPTIONS:
        raise FlagError(
            f"The flag name {key!r} is reserved ({'an option of flags() itself' if key in OWN_OPTIONS else 'a method of Flags'}); "
            f"choose another name. Received: name={name!r}"
        )
    return key


def _declare(
    type_: str, name: str, default: Any, description: str | None, choices: Iterable[Any] | None
) -> FlagSpec:
    key = _normalize_name(name)
    if description is not None and not isinstance(description, str):
        raise FlagError(
            f"The description of flag {key!r} must be a string. Received: description={description!r}"
        )
    conv_choices: tuple[Any, ...] | None = None
    if choices is not None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Iterable):
            raise FlagError(
                f"The choices of flag {key!r} must be a list of values. Received: choices={choices!r}"
            )
        conv_choices = tuple(_convert_type(type_, key, c, "its choices") for c in choices)
        if not conv_choices:
            raise FlagError(f"The choices of flag {key!r} are empty. Received: choices=[]")
    spec = FlagSpec(key, type_, None, description or "", conv_choices)
    if default is not None:
        default = _convert_type(type_, key, default, "its default")
        _check_choices(spec, default, "its default", default)
    return FlagSpec(key, type_, default, description or "", conv_choices)


def flag_numeric(
    name: str,
    default: float | None,
    description: str | None = None,
    choices: Iterable[float] | None = None,
) -> FlagSpec:
    """Declare a floating-point flag.

    >>> flag_numeric("dropout", 0.2, "Dropout rate").default
    0.2
    """
    return _declare("numeric", name, default, description, choices)


def flag_integer(
    name: str,
    default: int | None,
    description: str | None = None,
    choices: Iterable[int] | None = None,
) -> FlagSpec:
    """Declare an integer flag (``"256"`` and ``256.0`` convert; ``2.5`` does not).

    >>> flag_integer("layer1", 256, "Units in the first layer").type
    'integer'
    """
    return _declare("integer", name, default, description, choices)


def flag_boolean(name: str, default: bool | None, description: str | None = None) -> FlagSpec:
    """Declare a boolean flag (true/false, yes/no, 1/0, on/off; ``--name`` alone is true).

    >>> flag_boolean("batch_norm", False).default
    False
    """
    return _declare("boolean", name, default, description, None)


def flag_string(
    name: str,
    default: str | None,
    description: str | None = None,
    choices: Iterable[str] | None = None,
) -> FlagSpec:
    """Declare a string flag, optionally limited to ``choices``.

    >>> flag_string("activation", "relu", choices=["relu", "tanh"]).choices
    ('relu', 'tanh')
    """
    return _declare("string", name, default, description, choices)


def _infer(name: str, default: Any) -> FlagSpec:
    if isinstance(default, FlagSpec):
        if _normalize_name(name) != default.name:
            raise FlagError(
                f"The keyword {name!r} holds a declaration of flag {default.name!r}; "
                f"pass declarations positionally. Received: {name}={default!r}"
            )
        return default
    if isinstance(default, bool):
        type_ = "boolean"
    elif isinstance(default, int):
        type_ = "integer"
    elif isinstance(default, float):
        type_ = "numeric"
    elif isinstance(default, str) or default is None:
        type_ = "string"
    elif hasattr(default, "item") and not isinstance(default, (bytes, bytearray)):
        return _infer(name, default.item())  # a numpy scalar
    else:
        raise FlagError(
            f"The default of flag {name!r} must be a number, a boolean, a string or None, "
            f"since flags travel through command lines and files. "
            f"Received: {name}={default!r} ({type(default).__name__})"
        )
    return _declare(type_, name, default, None, None)


def _collect(declarations: Iterable[Any]) -> dict[str, FlagSpec]:
    specs: dict[str, FlagSpec] = {}
    for item in declarations:
        if isinstance(item, FlagSpec):
            new = [item]
        elif isinstance(item, Mapping):
            new = [_infer(str(k), v) for k, v in item.items()]
        else:
            raise FlagError(
                "flags() takes declarations (flag_numeric(...), flag_string(...), ...), "
                "dicts of defaults, or keyword defaults. "
                f"Received: {item!r} ({type(item).__name__})"
            )
        for spec in new:
            if spec.name in specs:
                raise FlagError(
                    f"The flag {spec.name!r} is declared twice; declare each flag once "
                    f"('learning-rate' and 'learning_rate' are the same flag). "
                    f"Received: {spec.name}"
                )
            specs[spec.name] = spec
    return specs


def _declared_or_described(declarations: Iterable[Any]) -> dict[str, FlagSpec]:
    """The declarations; under the launcher's flag check, written out and the process ended."""
    specs = _collect(declarations)
    if os.environ.get(DESCRIBE_ENV):
        describe_and_exit({k: s.to_dict() for k, s in specs.items()})
    return specs


# ---------------------------------------------------------------- conversion

_TYPE_WORDS = {
    "numeric": "a number",
    "integer": "a whole number",
    "boolean": "a boolean (true/false, yes/no, 1/0)",
    "string": "a string",
}


def _to_numeric(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            value = float(text)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ValueError


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
    raise ValueError


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError


_CONVERTERS = {
    "numeric": _to_numeric,
    "integer": _to_integer,
    "boolean": _to_boolean,
    "string": _to_string,
}


def _convert_type(type_: str, name: str, value: Any, source: str) -> Any:
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars from a tuning grid
    try:
        return _CONVERTERS[type_](value)
    except (ValueError, TypeError, OverflowError):
        raise FlagError(
            f"The flag {name!r} expects {_TYPE_WORDS[type_]}, but {source} gave {value!r}. "
            f"Received: {name}={value!r}"
        ) from None


def _check_choices(spec: FlagSpec, value: Any, source: str, raw: Any) -> None:
    if spec.choices is None or value is None or value in spec.choices:
        return
    shown = ", ".join(repr(c) for c in spec.choices)
    raise FlagError(
        f"The flag {spec.name!r} must be one of {shown}, but {source} gave {raw!r}. "
        f"Received: {spec.name}={raw!r}"
    )


def _convert(spec: FlagSpec, raw: Any, source: str) -> Any:
    value = _convert_type(spec.type, spec.name, raw, source)
    _check_choices(spec, value, source, raw)
    return value


# ---------------------------------------------------------------- the result


class Flags(Mapping[str, Any]):
    """The resolved flags: read as ``FLAGS.dropout`` or ``FLAGS["dropout"]``.

    Read-only. ``declared`` holds the declarations, ``sources`` where each value
    came from ("default", "file", "command line", "run"), ``unparsed`` the
    command-line arguments left to the script.

    >>> FLAGS = parse_flags([{"dropout": 0.2}], argv=["--dropout", "0.1"])
    >>> FLAGS.dropout, FLAGS.sources["dropout"]
    (0.1, 'command line')
    """

    __slots__ = ("_values", "declared", "sources", "unparsed")

    def __init__(
        self,
        values: Mapping[str, Any],
        declared: Mapping[str, FlagSpec],
        sources: Mapping[str, str] | None = None,
        unparsed: Iterable[str] = (),
    ) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "declared", dict(declared))
        object.__setattr__(self, "sources", dict(sources or {}))
        object.__setattr__(self, "unparsed", list(unparsed))

    def __getitem__(self, name: str) -> Any:
        values = self._values
        if name in values:
            return values[name]
        key = name.replace("-", "_") if isinstance(name, str) else name
        if key in values:
            return values[key]
        raise KeyError(self._missing(name))

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails; guard against half-built objects (copy, pickle)
        if name.startswith("__") or name == "_values":
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(self._missing(name)) from None

    def _missing(self, name: Any) -> str:
        close = difflib.get_close_matches(str(name), list(self._values), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"No flag named {name!r}.{hint} Declared flags: {', '.join(self._values) or '(none)'}."
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"Flags are read-only: set {name!r} by declaring its default, in flags.yml, "
            f"on the command line (--{name.replace('_', '-')} VALUE) or through training_run(flags=...)."
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._values})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Flags({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Flags, (self._values, self.declared, self.sources, self.unparsed))

    def as_dict(self) -> dict[str, Any]:
        """The values as a plain dict."""
        return dict(self._values)

    def record(self) -> dict[str, Any]:
        """What flags.json holds: ``{"values", "declared", "sources"}``."""
        return {
            "values": dict(self._values),
            "declared": {k: s.to_dict() for k, s in self.declared.items()},
            "sources": dict(self.sources),
        }


# ---------------------------------------------------------------- entry points


def parse_flags(
    declarations: Iterable[Any] = (),
    *,
    argv: list[str] | None = None,
    file: str | os.PathLike[str] | bool | None = None,
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    allow_unknown: bool = False,
    record: bool = True,
) -> Flags:
    """Resolve flags, raising FlagError on any problem (the library form of :func:`flags`).

    ``declarations``: FlagSpec objects and/or dicts of defaults. ``argv``: the
    command line (default ``sys.argv[1:]``). ``file``: a flags file; None looks for
    flags.yml beside the script then in the working folder; False reads none.
    ``profile``: the flags.yml profile (default: ``--flags-profile`` or
    ``$TRAINRUN_FLAGS_PROFILE``). ``overrides``: the highest-precedence values
    (default: ``$TRAINRUN_FLAGS``). ``allow_unknown``: keep undeclared
    ``--options`` in ``unparsed`` instead of failing. ``record``: write flags.json
    into the active run. ``--help`` raises SystemExit(0) after printing the table.

    >>> parse_flags([{"lr": 0.1, "epochs": 3}], argv=["--epochs=5"], file=False).epochs
    5
    """
    specs = _declared_or_described(declarations)
    argv = list(sys.argv[1:] if argv is None else argv)
    found, unparsed, own, wants_help = parse_argv(argv, specs, allow_unknown)

    values: dict[str, Any] = {name: spec.default for name, spec in specs.items()}
    sources: dict[str, str] = {name: "default" for name in specs}

    def apply(items: Mapping[str, Any], source: str) -> None:
        for raw_name, raw in items.items():
            key = str(raw_name).replace("-", "_")
            spec = specs.get(key)
            if spec is None:
                raise undeclared(key, specs, source, f"{raw_name}={raw!r}")
            values[key] = _convert(spec, raw, source)
            sources[key] = source

    try:
        if file is not False:
            path: Path | None
            if file is None or file is True:
                path = Path(own["flags_file"]) if "flags_file" in own else find_flags_file()
            else:
                path = Path(file)
            if path is not None:
                if not path.is_file():
                    raise FlagError(
                        f"The flags file {path} does not exist; check the path. Received: file={str(path)!r}"
                    )
                chosen = profile or own.get("flags_profile") or os.environ.get(PROFILE_ENV) or None
                apply(read_flags_file(path, chosen), f"the flags file {path.name}")
        elif profile or own.get("flags_profile"):
            raise FlagError(
                "A flags profile was requested but no flags file is read (file=False). "
                f"Received: profile={profile or own.get('flags_profile')!r}"
            )
        for key, (raw, shown) in found.items():
            spec = specs[key]
            values[key] = _convert(spec, raw, f"the command line ({shown})")
            sources[key] = "command line"
        if overrides is None:
            text = os.environ.get(FLAGS_ENV)
            overrides = read_overrides(text) if text else {}
        apply(overrides, "the training run")
    except FlagError:
        if wants_help:
            _print_help(Flags(values, specs, sources, unparsed))
        raise
    # friendlier source names in the record than in error messages
    sources = {
        k: ("file" if s.startswith("the flags file") else "run" if s == "the training run" else s)
        for k, s in sources.items()
    }
    result = Flags(values, specs, sources, unparsed)
    if wants_help:
        _print_help(result)
    if record:
        from trainrun.runs import active

        active.write_run_metadata("flags", result.record())
    return result


def _prog() -> str:
    arg0 = sys.argv[0] if sys.argv else ""
    return os.path.basename(arg0) if arg0 and arg0 not in ("-c", "-m") else "script.py"


def _print_help(result: Flags) -> None:
    print(format_flag_table(result, _prog()))
    raise SystemExit(0)


def _interactive() -> bool:
    from trainrun._interactive import in_interactive_python

    return not (sys.argv and sys.argv[0]) or in_interactive_python()


def _host_argv() -> bool:
    """True when sys.argv belongs to a host program (pytest, a Jupyter kernel), not a script.

    A test that imports a training script must not have pytest's own options
    (``--durations=5``) read as the script's flags.
    """
    arg0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(arg0)
    if name in ("pytest", "py.test", "ipykernel_launcher.py"):
        return True
    return name == "__main__.py" and os.path.basename(os.path.dirname(arg0)) == "pytest"


def flags(
    *declarations: Any,
    file: str | os.PathLike[str] | bool | None = None,
    config: str | None = None,
    arguments: list[str] | None = None,
    **defaults: Any,
) -> Flags:
    """Declare a script's flags and resolve their values (see the module docstring).

    ``declarations`` are ``flag_numeric(...)``-style declarations or dicts of
    defaults; keyword arguments are defaults whose type is inferred. Run from a
    command line, any problem prints one message and exits with code 2, and
    ``--help`` prints the flag table and exits 0; interactively (a notebook, the
    REPL) problems raise FlagError. Under pytest or a Jupyter kernel the command
    line belongs to the host program and is not read. Tests and libraries may
    call :func:`parse_flags` with an explicit ``argv``.

    ``file``, ``config`` and ``arguments`` are tfruns' argument names, with its
    meaning: the flags file to read (False: none), the profile of that file, and
    the command-line arguments to parse (default ``sys.argv[1:]``). They are never
    flags; declare a flag by one of these names with ``flag_string("file", ...)``.

    >>> FLAGS = flags(dropout=0.2, layer1=256, activation="relu")  # doctest: +SKIP
    >>> FLAGS.dropout  # doctest: +SKIP
    0.2
    """
    host = _host_argv() and arguments is None
    if arguments is not None and (
        isinstance(arguments, (str, bytes)) or not all(isinstance(a, str) for a in arguments)
    ):
        raise FlagError(
            "flags(arguments=...) takes a list of command-line strings, e.g. "
            f"['--dropout', '0.1']. Received: arguments={arguments!r}"
        )
    argv = list(arguments) if arguments is not None else ([] if host else None)
    try:
        return parse_flags([*declarations, defaults], argv=argv, file=file, profile=config)
    except FlagError as exc:
        if _interactive() or host:
            raise
        sys.stderr.write(f"{_prog()}: error: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
