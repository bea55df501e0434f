"""From a remedy's printed command to the next job's overrides, and from the best job back
to the complete command that reproduces it.

A remedy's `command` is `dlrun <the run's overrides> <the remedy's>` (dlrun.diagnose.catalog),
quoted for a shell: split it as a shell would, drop `dlrun` and any Hydra flag, and keep
the overrides, which is all a sweeper can hand a launcher.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from omegaconf import DictConfig

from dlrun import overrides as ov

FOLLOW_KEYS = ("follow", "hydra/sweeper")  # what asked for the walk, not part of any run


def without_follow(overrides: Iterable[str]) -> list[str]:
    """The overrides minus those that ask for the walk (`follow=on`, `follow.width=2`)."""
    return [o.text for o in ov.parse_all(overrides, strict=False)
            if not any(o.under(k) for k in FOLLOW_KEYS)]


def remedy_overrides(command: str) -> list[str]:
    """`dlrun -cd DIR a=1 'b=[1, 2]'` -> ["a=1", "b=[1, 2]"]."""
    words = shlex.split(command)
    if words and words[0] == "dlrun":
        words = words[1:]
    return without_follow(ov.split_argv(words)[1])


def _ident(o: ov.Override) -> tuple[str, str]:
    return o.prefix + o.key + ("@" + o.package if o.package else ""), o.value_text


def canonical(overrides: Iterable[str]) -> tuple:
    """Overrides as a set of (key, value): the same run however its overrides are ordered."""
    return tuple(sorted(_ident(o) for o in ov.parse_all(overrides, strict=False)))


def changes(overrides: Sequence[str], base: Sequence[str]) -> list[str]:
    """The overrides of a run that its base did not have (what its remedy changed)."""
    had = set(canonical(base))
    return [o.text for o in ov.parse_all(overrides, strict=False) if _ident(o) not in had]


def user_flags(config: DictConfig) -> list[str]:
    """The Hydra flags a run of this config needs on its command line: `-cd DIR` for the
    user's config directory, `-cn NAME` for another primary config (read from what Hydra
    recorded, so it holds wherever the walk was started from)."""
    flags = []
    for source in config.hydra.runtime.get("config_sources") or []:
        if source.get("provider") == "command-line" and source.get("schema") == "file":
            flags += ["-cd", str(source.path)]
    name = config.hydra.job.get("config_name")
    if name and name != "config":
        flags += ["-cn", str(name)]
    return flags


def reproduce(overrides: Sequence[str], flags: Sequence[str]) -> str:
    """The complete single-run command of a job of the walk."""
    return ov.command(list(overrides), flags)
