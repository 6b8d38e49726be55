"""What flags a script declares, learned before a run folder exists; overrides checked.

:func:`script_flags` starts the script once through the launch bootstrap with
``TRAINRUN_DESCRIBE_FLAGS`` set: the script's ``trainrun.flags()`` call, or the
first parse of its ``argparse`` parser, writes the declarations as JSON and
ends the process, so the body after the declaration never runs. The cost is
the script's start-up up to its declaration (about the interpreter's start plus
its imports: see docs/flags-and-runs.md); it is paid only when a run has
overrides, once per script content in a process (tuning probes once).

A script whose source names none of ``flags``, ``argparse``, ``ArgumentParser``
or ``parse_args`` and imports no module beside it is not started at all: it
declares nothing.

:func:`check_overrides` then converts each override to its declared type and
refuses an undeclared, mistyped or out-of-choices one with FlagError, and
:func:`override_args` spells the command line the script's parser expects.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from trainrun.exceptions import FlagError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DESCRIBE_ENV = "TRAINRUN_DESCRIBE_FLAGS"  # as trainrun.runs.flags._describe
PROBE_TIMEOUT_ENV = "TRAINRUN_PROBE_TIMEOUT"
#: Seconds a script may take to reach its flag declaration before the check gives up.
PROBE_TIMEOUT = 30.0
_MARKERS = (b"flags", b"argparse", b"ArgumentParser", b"parse_args")
_CHILD_FILE = Path(__file__).with_name("_child.py")

_cache: dict[tuple[str, str, str], Declaration] = {}
_cache_lock = threading.Lock()


class Declaration:
    """The flags a script declares.

    ``kind``: "trainrun" (``flags()``), "argparse", "none" (the script ended, or
    cannot reach a declaration, without declaring) or "unknown" (the probe failed
    or timed out: ``problem`` says why; overrides then go unchecked to the script,
    whose own ``flags()`` still refuses undeclared ones). A plain class, not a
    dataclass: dataclasses import ``inspect`` (~5 ms on every launch).
    """

    __slots__ = ("kind", "flags", "problem", "seconds")

    def __init__(
        self,
        kind: str,
        flags: dict[str, dict[str, Any]] | None = None,
        problem: str | None = None,
        seconds: float = 0.0,
    ) -> None:
        self.kind, self.flags, self.problem, self.seconds = kind, flags or {}, problem, seconds

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Declaration):
            return NotImplemented
        return (self.kind, self.flags, self.problem) == (other.kind, other.flags, other.problem)

    def __repr__(self) -> str:
        return f"Declaration({self.kind!r}, {sorted(self.flags)}, problem={self.problem!r})"


def script_digest(source: bytes) -> str:
    """The sha256 of a script's bytes: what tuning resume and the record key on."""
    return hashlib.sha256(source).hexdigest()


def _may_declare(source: bytes, folder: Path) -> bool:
    if any(marker in source for marker in _MARKERS):
        return True
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True  # let the script itself report it
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module.split(".")[0]] if node.module and not node.level else ["."]
        for name in names:
            if name == "." or (folder / f"{name}.py").is_file() or (folder / name).is_dir():
                return True  # a module of the project may declare the flags
    return False


def _probe_timeout() -> float:
    try:
        return max(0.5, float(os.environ.get(PROBE_TIMEOUT_ENV, PROBE_TIMEOUT)))
    except ValueError:
        return PROBE_TIMEOUT


def _probe(script: Path, cwd: Path, env: Mapping[str, str]) -> Declaration:
    import tempfile
    import time

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trainrun-flags-") as tmp:
        target = os.path.join(tmp, "declared.json")
        child_env = {k: v for k, v in env.items() if not k.startswith("TRAINRUN_")}
        child_env[DESCRIBE_ENV] = target
        child_env["TRAINRUN_LAUNCHER_PID"] = str(os.getpid())  # dies with us
        child_env.setdefault("PYTHONIOENCODING", "utf-8")
        timeout = _probe_timeout()
        try:
            proc = subprocess.Popen(
                [sys.executable, str(_CHILD_FILE), str(script)],
                cwd=cwd,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own group: a timeout ends its children too
            )
        except OSError as exc:
            return Declaration("unknown", problem=f"could not start the script: {exc}")
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return Declaration(
                "unknown",
                problem=f"it did not reach its flag declaration within {timeout:g} s "
                f"(set {PROBE_TIMEOUT_ENV} to wait longer)",
                seconds=time.perf_counter() - start,
            )
        except BaseException:
            _kill_group(proc)
            raise
        seconds = time.perf_counter() - start
        try:
            with open(target, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            data = None
    if isinstance(data, dict) and isinstance(data.get("flags"), dict):
        return Declaration(str(data.get("kind")), dict(data["flags"]), seconds=seconds)
    if proc.returncode == 0:
        return Declaration("none", seconds=seconds)
    tail = (err or b"").decode("utf-8", "replace").strip().splitlines()
    last = tail[-1] if tail else f"exit code {proc.returncode}"
    return Declaration(
        "unknown",
        problem=f"it ended with exit code {proc.returncode} before declaring its flags ({last})",
        seconds=seconds,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.communicate()  # reaps it and closes its pipe


def _cache_file(script: Path, cwd: Path, source: bytes) -> Path | None:
    """Where the declarations of this script content are kept between processes.

    Keyed on the script's bytes, the other ``.py`` files beside it and one folder
    down (a project module may declare the flags), the working folder and the
    Python: a change to any of
    them means a new probe. ``TRAINRUN_CACHE_DIR``, else ``$XDG_CACHE_HOME/trainrun``
    or ``~/.cache/trainrun``.
    """
    base = os.environ.get("TRAINRUN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "trainrun",
    )
    digest = hashlib.sha256(source)
    try:
        found = [*script.parent.glob("*.py"), *script.parent.glob("*/*.py")]
        neighbours = sorted(p for p in found if p != script and ".venv" not in p.parts)[:300]
        for path in neighbours:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    except OSError:
        return None
    digest.update(f"\0{cwd}\0{sys.executable}\0{script}".encode())
    return Path(base) / "declared" / f"{digest.hexdigest()[:32]}.json"


def _load_cached(path: Path | None) -> Declaration | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("kind") in ("trainrun", "argparse", "none"):
        if isinstance(data.get("flags"), dict):
            return Declaration(data["kind"], data["flags"])
    return None


def _store_cached(path: Path | None, found: Declaration) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"kind": found.kind, "flags": found.flags}), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass  # a cache: the next run probes again


def script_flags(script: Path, cwd: Path, env: Mapping[str, str], source: bytes) -> Declaration:
    """The declarations of ``script`` run from ``cwd``.

    Cached in this process per script content, and on disk between processes
    (see :func:`_cache_file`), so that ``trainrun run --flag ...`` pays for the
    probe once per version of the script.
    """
    if not _may_declare(source, script.parent):
        return Declaration("none")
    key = (str(script), str(cwd), script_digest(source))
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    cache_file = _cache_file(script, cwd, source)
    found = _load_cached(cache_file)
    if found is None:
        found = _probe(script, cwd, env)
        if found.kind != "unknown":
            _store_cached(cache_file, found)
    if found.kind != "unknown":
        with _cache_lock:
            _cache[key] = found
    return found


# ---------------------------------------------------------------- checking values

_TYPE_WORDS = {"integer": "a whole number", "numeric": "a number", "boolean": "true or false"}


def _refuse_unknown(name: str, value: Any, decl: Declaration, script: str) -> FlagError:
    import difflib

    names = list(decl.flags)
    if decl.kind == "none":
        return FlagError(
            f"The flag {name!r} cannot be set: {script} declares no flags (no trainrun.flags() "
            "and no argparse parser runs before it ends). Declare it in the script, or pass "
            "the script's own arguments with args=[...] (`trainrun run` : after '--'). "
            f"Received: {name}={value!r}"
        )
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return FlagError(
        f"Unknown flag {name!r} for {script}.{hint} Declared flags: {', '.join(names) or '(none)'}. "
        f"No run was started. Received: {name}={value!r}"
    )


def _convert_argparse(name: str, spec: Mapping[str, Any], value: Any, script: str) -> Any:
    type_ = spec.get("type")
    bad = FlagError(
        f"The flag {name!r} of {script} expects {_TYPE_WORDS.get(str(type_), 'a value')}. "
        f"No run was started. Received: {name}={value!r}"
    )
    if value is None:
        return None
    if type_ == "boolean":
        from trainrun.runs.flags._sources import FALSE_WORDS, TRUE_WORDS

        if isinstance(value, bool):
            out: Any = value
        elif isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            out = value.strip().lower() in TRUE_WORDS
        elif isinstance(value, int) and value in (0, 1):
            out = bool(value)
        else:
            raise bad
        action, default = spec.get("action"), spec.get("default")
        if (action == "store_true" and out is False and default not in (False, None)) or (
            action == "store_false" and out is True and default is not True
        ):
            raise FlagError(
                f"The flag {name!r} of {script} is a {action} option: it can only be turned "
                f"{'on' if action == 'store_true' else 'off'} from the command line. "
                f"Received: {name}={value!r}"
            )
        return out
    if isinstance(value, bool) and type_ in ("integer", "numeric"):
        raise bad
    try:
        if type_ == "integer":
            out = int(value) if not isinstance(value, float) or value.is_integer() else None
            if out is None:
                raise ValueError
        elif type_ == "numeric":
            out = float(value)
        else:
            out = value if isinstance(value, str) else _text(value)
    except (TypeError, ValueError):
        raise bad from None
    choices = spec.get("choices")
    if choices is not None and out not in choices and str(out) not in map(str, choices):
        shown = ", ".join(repr(c) for c in choices)
        raise FlagError(
            f"The flag {name!r} of {script} must be one of {shown}. No run was started. "
            f"Received: {name}={value!r}"
        )
    return out


def check_overrides(decl: Declaration, overrides: Mapping[str, Any], script: str) -> dict[str, Any]:
    """The overrides converted to their declared types; FlagError for any the script refuses."""
    if decl.kind == "unknown":
        return dict(overrides)
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        spec = decl.flags.get(name)
        if spec is None:
            raise _refuse_unknown(name, value, decl, script)
        if decl.kind == "trainrun":
            from trainrun.runs.flags import FlagSpec, _convert

            choices = spec.get("choices")
            flag = FlagSpec(
                name,
                str(spec.get("type", "string")),
                spec.get("default"),
                str(spec.get("description") or ""),
                tuple(choices) if choices is not None else None,
            )
            try:
                out[name] = _convert(flag, value, "the training run")
            except FlagError as exc:
                raise FlagError(f"{exc} (in {script}; no run was started)") from None
        else:
            out[name] = _convert_argparse(name, spec, value, script)
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def override_args(
    decl: Declaration, overrides: Mapping[str, Any], spelled: Mapping[str, str]
) -> list[str]:
    """The command-line arguments that carry ``overrides`` to the script's parser."""
    args: list[str] = []
    for name, value in overrides.items():
        if value is None:
            continue
        spec = decl.flags.get(name) if decl.kind == "argparse" else None
        if spec is None:
            # trainrun.flags() reads --name=value in any spelling (and TRAINRUN_FLAGS first)
            args.append(f"--{spelled.get(name, name)}={_text(value)}")
            continue
        option, action = str(spec.get("option")), spec.get("action")
        if action == "store_true":
            args += [option] if value else []
        elif action == "store_false":
            args += [] if value else [option]
        elif action == "boolean_optional":
            args.append(option if value else "--no-" + option.lstrip("-"))
        elif option.startswith("--"):
            args.append(f"{option}={_text(value)}")
        else:
            args.append(f"{option}{_text(value)}")  # a short option: -x0.1
    return args
