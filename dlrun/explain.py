"""Every error a user can cause, as one line: what is wrong and what to type instead.

The command line sends whatever a run raises here (whether Hydra raised it while composing,
a job while building or training, or a sweeper); `explain` returns the line and the exit
code, or None for a bug in dlrun itself, which keeps its traceback. Suggestions ("did you
mean") come from the options Hydra itself lists, so they see the whole config search path:
`-cd DIR`'s groups and options, Hydra's own (`hydra/launcher=...`), plugins'. No torch here.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from hydra.errors import CompactHydraException, InstantiationException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from dlrun.errors import RunFailed, UserError, find_cause
from dlrun.sweep.job import JobFailed


@dataclass(frozen=True)
class Explained:
    line: str  # printed after "dlrun: "
    code: int  # the exit status: 2 bad input, 3 the run or search failed


# lines of Hydra's messages that the one line leaves out (a list follows, or a key repeats)
_NOISE = ("Config search path", "provider=", "full_key:", "object_type=", "To append to your config",
          "Available options", "Are you sure that module")


def explain(error: BaseException) -> Explained | None:
    """The one line for `error`, or None when it is a bug (not the user's input)."""
    user = find_cause(error, UserError)
    if user is not None:
        return Explained(f"error: {_one_line(str(user))}", 2)
    failed = find_cause(error, RunFailed)
    if failed is not None:
        return Explained(f"run failed: {_one_line(str(failed))}", 3)
    stopped = find_cause(error, JobFailed)
    if stopped is not None:  # an Optuna search: a batch failed beyond max_failure_rate
        return Explained(f"search stopped: too many failed trials (hydra.sweeper.max_failure_rate); "
                         f"the last: {stopped}; `dlrun-summary <sweep dir>` lists every job.", 3)
    built = find_cause(error, InstantiationException)
    if built is not None:
        return _instantiation(built)
    if isinstance(error, (CompactHydraException, OmegaConfBaseException)):
        return Explained(f"error: {_hydra_line(error)}", 2)
    if isinstance(error, OSError) and error.filename:
        return Explained(f"error: cannot write {error.filename} ({error.strerror}); run from a "
                         "writable directory or pick one with hydra.run.dir=... "
                         "(hydra.sweep.dir=... for -m).", 2)
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _instantiation(error: InstantiationException) -> Explained | None:
    """A `_target_` that cannot be imported, or a user's class whose `__init__` raised.

    dlrun's own classes raising anything but a UserError are bugs: None (a traceback)."""
    text = str(error)
    key = re.search(r"full_key: ([\w.]+)", text)
    where = f"{key.group(1)}._target_" if key else "_target_"
    locating = re.search(r"Error locating target '([^']+)'", text)
    if locating:
        missing = find_cause(error.__cause__, ImportError)
        why = f" ({_first_cause_line(missing)})" if missing is not None else ""
        return Explained(f"error: {where}={locating.group(1)} cannot be imported{why}; check its "
                         "spelling, or put its module on PYTHONPATH.", 2)
    called = re.search(r"Error in call to target '([^']+)'", text)
    cause = error.__cause__
    if called and cause is not None and not called.group(1).startswith("dlrun."):
        return Explained(f"error: {called.group(1)}(...) raised {type(cause).__name__}: "
                         f"{_one_line(str(cause))} (building {where.rsplit('.', 1)[0]}); fix the "
                         "class or the arguments its config gives it.", 2)
    return None


def _first_cause_line(error: BaseException) -> str:
    """`No module named 'x'`, from Hydra's multi-line ImportError around it."""
    inner = error.__cause__ if error.__cause__ is not None else error
    return _one_line(str(inner).splitlines()[0] if str(inner) else type(inner).__name__)


def _hydra_line(error: BaseException) -> str:
    """Hydra's or OmegaConf's message in one line, with a "did you mean" when one fits."""
    texts = [str(error)]
    if isinstance(error.__cause__, OmegaConfBaseException):
        texts.append(str(error.__cause__))
    lines = [line.strip() for text in texts for line in text.splitlines()]
    kept = [line.rstrip(".") for line in lines
            if line and not line.startswith(_NOISE) and not _is_option(line, texts[0])]
    hint = did_you_mean(error)
    return "; ".join(dict.fromkeys(kept)) + (f"; {hint}" if hint else "")


def _is_option(line: str, text: str) -> bool:
    """An entry of Hydra's "Available options" list (one name per tab-indented line)."""
    return "Available options" in text and re.fullmatch(r"[\w.-]+", line) is not None


def hydra_options(text: str) -> tuple[str, list[str]] | None:
    """The group and options Hydra listed in a "Could not find" message (the whole search path)."""
    found = re.search(r"Available options in '([\w/]+)':\n((?:\t.*\n?)*)", text)
    if not found:
        return None
    return found.group(1), [o.strip() for o in found.group(2).splitlines() if o.strip()]


def did_you_mean(error: BaseException) -> str:
    """A close name for an unknown group option or key, when there is one."""
    text = str(error)
    missing = re.search(r"Could not find '([\w/]+)/([\w.-]+)'", text)
    listed = hydra_options(text)
    if missing and listed:
        group, option = missing.groups()
        options = [o for o in listed[1] if not o.startswith("_")]
        close = difflib.get_close_matches(option, options, n=1)
        return f"did you mean {group}={close[0]}?" if close else f"choose from: {', '.join(options)}"
    key_error = find_cause(error, (ConfigKeyError, ConfigAttributeError))
    if key_error is not None and key_error.parent_node is not None and key_error.key is not None:
        keys = [str(k) for k in key_error.parent_node.keys()]
        close = difflib.get_close_matches(str(key_error.key), keys, n=1)
        if close:
            parent = key_error.full_key.rpartition(".")[0]
            return f"did you mean {parent + '.' if parent else ''}{close[0]}?"
    return ""
