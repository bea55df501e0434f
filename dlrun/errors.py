"""The one exception type a user is meant to see: its message is the whole story."""


class UserError(Exception):
    """Bad input: what is wrong and what to type instead, in one line.

    The command line prints it without a traceback and exits non-zero.
    """
