"""Reading and writing overrides (`key=value`, `group=option`, `+key=...`, `~key`, sweeps).

Every override dlrun reads or writes goes through Hydra's own override grammar
(`OverridesParser`), so quoting, lists, null, the `+`/`++`/`~` prefixes, sweeps (`a,b`,
`range(...)`), group paths (`hydra/launcher=joblib`) and packages (`group@pkg=option`)
mean here exactly what they mean to Hydra. No torch here: `dlrun --help` stays fast.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType, Quote, QuotedString
from hydra.errors import HydraException

from dlrun.paths import config_dir

_PREFIX = {OverrideType.CHANGE: "", OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++",
           OverrideType.DEL: "~"}


@dataclass(frozen=True)
class Override:
    """One override as Hydra reads it; `text` is what was typed, kept for writing it back."""

    text: str
    key: str  # the config path or group: "optim.lr", "model", "hydra/launcher" (no prefix)
    prefix: str  # "", "+", "++" or "~"
    value: Any  # 0.1, "adam", ["l2", "dropout"], None; a Hydra sweep object for a sweep
    value_text: str  # the part after the first "=", as typed ("" for `~key`)
    package: str | None = None  # the `pkg` of `group@pkg=option`
    is_sweep: bool = False

    @property
    def is_group(self) -> bool:
        """A config-group choice (`model=cnn`, `hydra/launcher=joblib`), not a config key."""
        return "/" in self.key or self.package is not None or self.key in config_groups()

    def under(self, key: str) -> bool:
        """Does this override set `key` or something inside it (`optim.lr` is under `optim`)?"""
        return self.key == key or self.key.startswith(key + ".")

    def options(self) -> list[str]:
        """The options a group override chooses: `reg=[l2,dropout]` -> ["l2", "dropout"]."""
        if self.is_sweep or self.value is None:
            return []
        values = self.value if isinstance(self.value, list) else [self.value]
        return [str(v) for v in values]


@cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


@cache
def config_groups() -> frozenset[str]:
    """The shipped config groups (one folder each in conf/)."""
    return frozenset(p.name for p in Path(config_dir()).iterdir() if p.is_dir())


def parse(text: str) -> Override:
    """Read one override; raises Hydra's `HydraException` (with its message) when it is not one."""
    hydra = _parser().parse_override(text)
    has_value = hydra.value_type is not None
    return Override(
        text=text,
        key=hydra.key_or_group,
        prefix=_PREFIX[hydra.type],
        value=hydra.value() if has_value else None,
        value_text=hydra.get_value_string() if has_value else "",
        package=hydra.package,
        is_sweep=hydra.is_sweep_override(),
    )


def parse_all(texts: Iterable[str], strict: bool = True) -> list[Override]:
    """Read many; with strict=False, skip what is no override (Hydra will say what is wrong)."""
    out = []
    for text in texts:
        try:
            out.append(parse(str(text)))
        except HydraException:
            if strict:
                raise
    return out


def key(text: str) -> str:
    """The key or group an override sets: `+optim.lr=0.1` -> `optim.lr`."""
    return parse(text).key


def keys(texts: Iterable[str]) -> list[str]:
    return [o.key for o in parse_all(texts)]


def value_of(texts: Iterable[str], name: str, default: Any = None) -> Any:
    """The value the last override of key `name` gives it (its Python value), else `default`."""
    found = [o for o in parse_all(texts, strict=False) if o.key == name and o.prefix != "~"]
    return found[-1].value if found else default


def format_value(value: Any) -> str:
    """The text after `=` that Hydra parses back to `value` (lists as `[a,b]`, None as null,
    strings quoted only when they would otherwise read as something else)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{format_value(str(k))}:{format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if not any(c.isspace() for c in text):  # spaces read fine bare, but quoted is clearer
        try:
            bare = parse(f"k={text}")
            if not bare.is_sweep and bare.value == text:
                return text
        except HydraException:
            pass
    return QuotedString(text, Quote.single).with_quotes()


def format(key: str, value: Any, prefix: str = "") -> str:
    """An override that sets `key` to `value`: format("model.hidden", [64, 32]) -> model.hidden=[64,32]."""
    return f"{prefix}{key}={format_value(value)}"


def merge(user: Sequence[str], changes: Sequence[str], drop: Iterable[str] = ()) -> list[str]:
    """The user's overrides with `changes` applied, in the user's order, new keys last.

    A change replaces the user's override of the same key. A change of a config group
    drops the user's keys inside that group (`model.hidden=...` does not survive
    `model=cnn`), except that a group given a list of options (`reg=[l2,dropout]`) keeps
    the keys of the options it still chooses. Overrides of a key in `drop`, or of a key
    inside it, go.
    """
    changed = parse_all(changes)
    by_key = {o.key: o.text for o in changed}
    groups = [o for o in changed if o.is_group]

    def dropped(o: Override) -> bool:
        if any(o.under(d) for d in drop):
            return True
        for g in groups:
            inside = o.key.startswith(g.key + ".")
            if inside and not (isinstance(g.value, list) and o.key.split(".")[1] in g.options()):
                return True
        return False

    merged = [by_key.pop(o.key, o.text) for o in parse_all(user) if not dropped(o)]
    return merged + list(by_key.values())  # a change took its key's place, or comes last


def command(overrides: Sequence[str], flags: Sequence[str] = ()) -> str:
    """The `dlrun` command line that runs `overrides`, quoted for a POSIX shell."""
    return " ".join(["dlrun", *(shlex.quote(a) for a in [*flags, *overrides])])


# --- the command line: Hydra's flags and the overrides ----------------------------------


@cache
def _flag_values() -> dict[str, tuple[str, ...] | None]:
    """Hydra's own command-line flags and the values each takes: () for none, None for any
    one value, else the allowed values of an optional one (`--info [defaults]`).

    Read from Hydra's argument parser (a private helper, but the one `hydra.main` uses), so
    a flag Hydra adds is known here too; argparse offers no public view of its options.
    """
    from hydra._internal.utils import get_args_parser

    takes = {}
    for action in get_args_parser()._actions:
        values = () if action.nargs == 0 else None if action.nargs is None else tuple(action.choices or ())
        takes.update(dict.fromkeys(action.option_strings, values))
    return takes


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, the overrides):
    `-m -cd DIR a=1` -> (["-m", "-cd", "DIR"], ["a=1"])."""
    flags: list[str] = []
    overrides: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        flags.append(arg)
        name, inline, _ = arg.partition("=")
        values = _flag_values().get(name, ())
        takes_next = values is None or (rest and rest[0] in values)
        if not inline and rest and takes_next:  # `-cd DIR`, `--cfg job`, `--info defaults`
            flags.append(rest.pop(0))
    return flags, overrides


def shaping_flags(hydra: Mapping[str, Any]) -> list[str]:
    """The flags that chose a run's configs (`-cd DIR`, `-cp DIR`, `-cn NAME`), rebuilt from
    Hydra's record of the run (its `hydra` node: `runtime.config_sources`, `job.config_name`),
    so that a printed command composes the same config wherever it is pasted."""
    runtime, job = hydra.get("runtime") or {}, hydra.get("job") or {}
    flags = []
    for source in runtime.get("config_sources") or []:
        if source.get("schema") != "file":
            continue
        path = source.get("path", "")
        if source.get("provider") == "command-line":
            flags += ["-cd", path]
        elif source.get("provider") == "main" and os.path.realpath(path) != os.path.realpath(config_dir()):
            flags += ["-cp", path]
    if job.get("config_name") not in (None, "config"):
        flags += ["-cn", str(job["config_name"])]
    return flags


def run_flags() -> list[str]:
    """`shaping_flags` of the job running now ([] outside a Hydra job)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return []
    return shaping_flags(OmegaConf.to_container(HydraConfig.get(), resolve=False))


def with_resumed_overrides(argv: Sequence[str]) -> list[str]:
    """`dlrun trainer.resume=DIR` re-composes DIR's own run: its saved flags (`-cd`, ...) and
    overrides come first, and anything typed now replaces the saved one of the same key."""
    flags, typed = split_argv(argv)
    resume = value_of(typed, "trainer.resume")
    saved = Path(str(resume), ".hydra", "overrides.yaml")
    if resume is None or not saved.is_file():
        return list(argv)
    typed_keys = {o.key for o in parse_all(typed, strict=False)}
    earlier = [str(o) for o in yaml.safe_load(saved.read_text()) or []]
    earlier = [o.text for o in parse_all(earlier, strict=False) if o.key not in typed_keys]
    return [*_saved_flags(Path(str(resume)), flags), *flags, *earlier, *typed]


def _saved_flags(run_dir: Path, typed: list[str]) -> list[str]:
    """The flags that shaped the saved run, unless the command typed its own."""
    try:
        record = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    saved = shaping_flags(record.get("hydra") or {})
    given = {f.partition("=")[0] for f in typed}
    names = {"-cd": "--config-dir", "-cp": "--config-path", "-cn": "--config-name"}
    kept = []
    for flag, value in zip(saved[::2], saved[1::2]):
        if not {flag, names[flag]} & given:
            kept += [flag, value]
    return kept
