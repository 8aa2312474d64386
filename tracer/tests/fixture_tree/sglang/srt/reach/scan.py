"""A registry that imports every plugin module it finds, like upstream's ModelRegistry."""
import importlib
import os
import pkgutil

from sglang.srt.reach import plugins, used, used_helper
from sglang.srt.reach.adapters import resolve
from sglang.srt.reach.base import KINDS, BuiltChild, Record, Shell, Unbuilt, UnbuiltError
from sglang.srt.reach.rare import RareOptions, rare_path

LAZY = "sglang.srt.reach.lazy:fn"  # loaded on demand, like a KernelSpec target


def load_all():
    found = {}
    for info in pkgutil.iter_modules(plugins.__path__):
        module = importlib.import_module(f"{plugins.__name__}.{info.name}")
        found.update({k: v for k, v in vars(module).items() if isinstance(v, type)})
    import sglang.srt.reach.groups  # noqa: F401

    runs = [kind().run() for kind in KINDS[:2] if not isinstance(kind, (Shell, Unbuilt))]
    try:
        BuiltChild(), Record(" r ")
    except UnbuiltError:
        raise
    if os.environ.get("SLIM_FIXTURE_RARE"):  # never set in a recording
        return rare_path(found), RareOptions().label, used.helper_on_error()
    return found, used_helper(), runs, resolve()


class _App:
    def __init__(self):
        self.handlers = {}

    def exception_handler(self, exc):
        def register(fn):
            self.handlers[exc] = fn
            return fn
        return register

    def post(self, path):
        return self.exception_handler(path)


app = _App()


@app.post("/flush")  # a route no workload called: the surface keeps it whole
def flush_route():
    return used.helper()


@app.exception_handler(KeyError)
def key_error_handler(request, exc):
    return 404
