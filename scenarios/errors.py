"""The one exception type the CLI turns into a one-line error. It lives here, in the lowest package
(scenario specs, hardware, the model cache), so that `scenarios` imports nothing of `slim`;
`slim.errors` re-exports it."""


class SlimError(Exception):
    """A user-facing failure: bad input, wrong upstream, missing hardware."""
