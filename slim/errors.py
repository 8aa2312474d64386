"""The one exception type the CLI turns into a one-line error (defined in scenarios/errors.py, the
lowest package, so that imports point one way: slim -> scenarios -> nothing of the project)."""

from scenarios.errors import SlimError

__all__ = ["SlimError"]
