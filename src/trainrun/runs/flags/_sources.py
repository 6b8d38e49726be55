"""Where flag values come from: the flags file, the command line, the environment; --help.

Private to :mod:`trainrun.runs.flags`, which declares, converts and checks;
this module only finds and splits the raw values, and formats the help table.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainrun.exceptions import FlagError

if TYPE_CHECKING:
    from trainrun.runs.flags import Flags, FlagSpec

FLAGS_ENV = "TRAINRUN_FLAGS"
PROFILE_ENV = "TRAINRUN_FLAGS_PROFILE"
FLAGS_FILES = ("flags.yml", "flags.yaml")
TRUE_WORDS = ("true", "yes", "1", "on", "t", "y")
FALSE_WORDS = ("false", "no", "0", "off", "f", "n")
# Options flags() itself understands on the command line; they cannot be flag names.
OWN_OPTIONS = ("flags_profile", "flags_file", "help")


def undeclared(name: str, specs: Mapping[str, FlagSpec], source: str, shown: str) -> FlagError:
    declared = ", ".join(specs) or "(none)"
    close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.6)
    hint = f" Did you mean '--{close[0].replace('_', '-')}'?" if close else ""
    return FlagError(
        f"Unknown flag {name!r} from {source}.{hint} Declared flags: {declared}. "
        f"Arguments meant for the script itself go after '--'. Received: {shown}"
    )


# ---------------------------------------------------------------- sources of values


def _script_dir() -> Path | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    if not path or path in ("-c", "-m"):
        return None
    folder = Path(path).resolve().parent
    return folder if folder.is_dir() else None


def find_flags_file() -> Path | None:
    folders = [d for d in (_script_dir(), Path.cwd()) if d is not None]
    for folder in dict.fromkeys(folders):
        for name in FLAGS_FILES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def read_flags_file(path: Path, profile: str | None) -> dict[str, Any]:
    import yaml  # only when a flags file exists: keeps plain scripts fast

    try:
        data = _load_bounded(yaml, path.read_text(encoding="utf-8"), path)
    except OSError as exc:
        raise FlagError(f"Could not read the flags file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise FlagError(
            f"The flags file {path} is not valid YAML{at}; fix the file. "
            f"Received: {getattr(exc, 'problem', exc)}"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FlagError(
            f"The flags file {path} must hold a mapping of flag names to values "
            f"(or of profile names to such mappings). Received: {type(data).__name__}"
        )
    nested = [isinstance(v, dict) for v in data.values()]
    if data and all(nested):
        chosen = profile or "default"
        if chosen != "default" and chosen not in data:
            raise FlagError(
                f"The flags file {path} has no profile {chosen!r}. "
                f"Profiles: {', '.join(map(str, data))}. Received: profile={chosen!r}"
            )
        merged = dict(data.get("default") or {})
        if chosen != "default":
            merged.update(data[chosen] or {})
        return merged
    if any(nested):
        raise FlagError(
            f"The flags file {path} mixes flat flags and profiles; either list flags at the "
            f"top level, or put every flag under a profile such as 'default:'."
        )
    if profile:
        raise FlagError(
            f"The profile {profile!r} was requested, but the flags file {path} has no profiles "
            f"(its flags are at the top level). Unset {PROFILE_ENV} or add profiles to the file. "
            f"Received: profile={profile!r}"
        )
    return data


#: The most values a flags file may hold once its aliases are expanded (a few
#: hundred bytes of nested aliases can otherwise expand to gigabytes).
MAX_FLAGS_FILE_NODES = 100_000


def _load_bounded(yaml: Any, text: str, path: Path) -> Any:
    """``yaml.safe_load``, refusing a document whose aliases expand beyond the bound.

    The composed graph shares each anchored node among its aliases; its expanded
    size is counted once per node (memoised), so the check costs one pass.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def size(n: Any, depth: int = 0) -> int:
            known = sizes.get(id(n))
            if known is not None:
                return known
            if depth > 200:
                raise FlagError(f"The flags file {path} is nested too deeply; fix the file.")
            total = 1
            if isinstance(n, yaml.MappingNode):
                for key, value in n.value:
                    total += size(key, depth + 1) + size(value, depth + 1)
            elif isinstance(n, yaml.SequenceNode):
                for item in n.value:
                    total += size(item, depth + 1)
            total = min(total, MAX_FLAGS_FILE_NODES + 1)
            sizes[id(n)] = total
            return total

        if size(node) > MAX_FLAGS_FILE_NODES:
            raise FlagError(
                f"The flags file {path} expands to more than {MAX_FLAGS_FILE_NODES:,} values "
                "through its aliases (&anchor / *alias); a flags file holds a few flags. "
                "Fix the file."
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_overrides(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagError(
            f"The environment variable {FLAGS_ENV} must hold a JSON object of flag values. "
            f"Received: {text[:200]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise FlagError(
            f"The environment variable {FLAGS_ENV} must hold a JSON object of flag values. "
            f"Received: {text[:200]!r}"
        )
    return data


def _bool_literal(token: str) -> bool:
    return token.strip().lower() in TRUE_WORDS + FALSE_WORDS


def _flag_value(
    argv: list[str], i: int, tok: str, spec: FlagSpec, eq: str, value: str
) -> tuple[Any, str, int]:
    """The value of ``--name`` at ``argv[i]``: (value, as shown, index of the last token used)."""
    if eq:
        return value, tok, i
    if spec.type == "boolean":
        if i + 1 < len(argv) and _bool_literal(argv[i + 1]):
            return argv[i + 1], f"{tok} {argv[i + 1]}", i + 1
        return "true", f"{tok} true", i
    if i + 1 >= len(argv):
        raise FlagError(
            f"The flag {tok} needs a value: '{tok} VALUE' or '{tok}=VALUE'. Received: {tok}"
        )
    return argv[i + 1], f"{tok} {argv[i + 1]}", i + 1  # taken verbatim, even '-1' or '--x'


def parse_argv(
    argv: list[str], specs: Mapping[str, FlagSpec], allow_unknown: bool
) -> tuple[dict[str, tuple[Any, str]], list[str], dict[str, str], bool]:
    """Split argv into flag values, own options, the script's arguments and a help request."""
    found: dict[str, tuple[Any, str]] = {}
    own: dict[str, str] = {}
    unparsed: list[str] = []
    wants_help = False
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            unparsed.extend(argv[i:])
            break
        if tok in ("-h", "--help"):
            wants_help = True
        elif tok.startswith("--") and len(tok) > 2:
            body, eq, value = tok[2:].partition("=")
            key = body.replace("-", "_")
            spec = specs.get(key)
            if key in OWN_OPTIONS:
                if not eq:
                    if i + 1 >= len(argv):
                        raise FlagError(f"The option {tok} needs a value. Received: {tok}")
                    i += 1
                    value = argv[i]
                own[key] = value
            elif spec is None and not eq and _negated(key, specs) is not None:
                found[key[3:]] = (False, tok)
            elif spec is None:
                if not allow_unknown:
                    raise undeclared(key, specs, "the command line", tok)
                unparsed.append(tok)
            else:
                raw, shown, i = _flag_value(argv, i, tok, spec, eq, value)
                found[key] = (raw, shown)
        else:
            unparsed.append(tok)  # positional or single-dash: the script's own
        i += 1
    return found, unparsed, own, wants_help


def _negated(key: str, specs: Mapping[str, FlagSpec]) -> FlagSpec | None:
    """``--no-NAME`` for a boolean flag NAME."""
    if not key.startswith("no_"):
        return None
    spec = specs.get(key[3:])
    return spec if spec is not None and spec.type == "boolean" else None


# ---------------------------------------------------------------- help


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_flag_table(flags_: Flags, prog: str = "script.py") -> str:
    """The ``--help`` text: usage, then one row per flag."""
    head = ("flag", "type", "default", "value", "choices", "description")
    rows = []
    for name, spec in flags_.declared.items():
        value = flags_.get(name, spec.default)
        source = flags_.sources.get(name, "default")
        rows.append(
            (
                "--" + name.replace("_", "-"),
                spec.type,
                _fmt(spec.default),
                _fmt(value) + ("" if source == "default" else f" ({source})"),
                ", ".join(_fmt(c) for c in spec.choices) if spec.choices else "",
                spec.description,
            )
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        f"usage: python {prog} [--FLAG VALUE ...] [--flags-profile NAME] [-- SCRIPT ARGS]",
        "",
        "flags (defaults < flags.yml < command line < training_run overrides):",
    ]
    for row in [head, *rows]:
        lines.append(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )
    if not rows:
        lines.append("  (no flags declared)")
    lines += [
        "",
        "--name=value and --name value both work; --learning-rate means learning_rate;",
        "booleans take true/false, yes/no, 1/0, or --name / --no-name alone.",
        f"A profile of flags.yml is chosen by --flags-profile NAME or {PROFILE_ENV}.",
    ]
    return "\n".join(lines)
