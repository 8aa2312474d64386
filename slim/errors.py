"""The one exception type the CLI turns into a one-line error."""


class SlimError(Exception):
    """A user-facing failure: bad input, wrong upstream, missing hardware."""
