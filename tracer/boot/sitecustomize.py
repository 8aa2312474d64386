"""Boot hook: put this folder on PYTHONPATH and every Python process traces itself.

Python imports `sitecustomize` at start-up in every interpreter, including
multiprocessing spawn/forkserver children and `subprocess` Python children,
because they inherit PYTHONPATH and SLIM_TRACE_DIR. The collector is loaded by
file path so that tracing adds no importable package to the traced process.
"""

import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))


def _load_collector():
    path = os.path.join(os.path.dirname(_here), "collector.py")
    spec = importlib.util.spec_from_file_location("_slim_tracer_collector", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _chain_next_sitecustomize():
    """Run the sitecustomize this one shadows (e.g. a distro's), as Python would have."""
    others = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.environ.get("SLIM_TRACE_DIR"):
    _slim_collector = _load_collector().start_from_environment()
_chain_next_sitecustomize()
