"""The one exception type a user is meant to see: its message is the whole story."""


class UserError(Exception):
    """Bad input: what is wrong and what to type instead, in one line.

    The command line prints it without a traceback and exits non-zero.
    """


class RunFailed(Exception):
    """The run itself went wrong (e.g. its loss became non-finite): the run directory says how.

    A single run exits non-zero; inside a sweep the job is marked failed and the sweep goes on.
    """
