"""One exception type for problems the user can fix; entry points print it as one line."""


class ResumenError(ValueError):
    """A bad input or setting, with a message that names the problem and the fix."""
