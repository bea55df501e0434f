"""The one exception type a user is meant to see: its message is the whole story."""


class UserError(Exception):
    """Bad input: what is wrong and what to type instead, in one line.

    The command line prints it without a traceback and exits non-zero.
    """


class RunFailed(Exception):
    """The run itself went wrong (e.g. its loss became non-finite): the run directory says how.

    A single run exits non-zero; inside a sweep the job is marked failed and the sweep goes on.
    """


def find_cause(error: BaseException | None, kind: type | tuple[type, ...]) -> BaseException | None:
    """The first exception of `kind` along the chain that Hydra, OmegaConf and
    `instantiate` wrap around an error raised deep inside a run."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
