"""The one exception type that means "the user gave us something wrong"."""


class UserError(Exception):
    """Bad input (path, flag, data): the CLI prints its message as one line and exits non-zero.

    Lives in data_prep because every package may import data_prep and nothing else of ours.
    """
