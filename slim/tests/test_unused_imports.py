"""Per-module dead sglang imports: a binding the module's kept code does not use goes, unless
another module may still read it there (a re-export, the module bound as an object, a star
import) or the import is the only one that loads its module (import-time registration)."""

import textwrap

from slim.defs import index_module
from slim.plan import unused_sglang_imports
from slim.reach import Liveness

MODULES = {
    # `helper` is used only by `gone`, which the plan deletes; `Widget` only in a stub's body.
    "sglang/srt/user.py": """\
        from sglang.srt.lib import helper, kept_name, Widget, Annot
        from sglang.srt.lib import reexported, lazily_reexported
        from sglang.srt.registers import Plugin

        def live():
            return kept_name()

        def gone():
            return helper()

        def stubbed(x: Annot):
            return Widget(x)
        """,
    "sglang/srt/lib.py": "def helper(): ...\ndef kept_name(): ...\nclass Widget: ...\nclass Annot: ...\n"
                         "def reexported(): ...\ndef lazily_reexported(): ...\n",
    "sglang/srt/registers.py": "class Plugin: ...\n",
    "sglang/srt/consumer.py": """\
        from sglang.srt.user import reexported
        from sglang.srt import namespace
        from sglang.srt.lib import helper

        def later():
            from sglang.srt.user import lazily_reexported
            return lazily_reexported, reexported, namespace.helper, helper
        """,
    "sglang/srt/namespace.py": "from sglang.srt.lib import helper\n",
    "sglang/srt/hub/__init__.py": "from sglang.srt.hub.impl import *\n",
    "sglang/srt/hub/impl.py": "from sglang.srt.lib import Widget\n",
    "sglang/srt/pkg/__init__.py": "from sglang.srt.lib import kept_name\n",
}


def liveness(indexes, deleted=(), stubs=()) -> Liveness:
    live = Liveness()
    for index in indexes:
        for d in index.defs:
            key = (index.path, d.qualname, d.line)
            if d.qualname not in deleted:
                live.defs[key] = "ran"
            if d.qualname in stubs:
                live.stubs.add(key)
        live.needed |= set(index.refs)
    return live


def test_only_imports_nothing_can_read_any_more_go():
    indexes = [index_module(path, textwrap.dedent(source).encode()) for path, source in MODULES.items()]
    dead = unused_sglang_imports(indexes, liveness(indexes, deleted={"gone"}, stubs={"stubbed"}))
    assert dead["sglang/srt/user.py"] == {"helper", "Widget"}  # Annot: the stub's signature keeps it
    assert not dead.get("sglang/srt/namespace.py")  # `from sglang.srt import namespace`: read as namespace.x
    assert not dead.get("sglang/srt/hub/impl.py")  # star-imported by its package: its names flow on
    assert "sglang/srt/pkg/__init__.py" not in dead  # package files are the re-export hubs
    # Plugin is unused, but no other import loads sglang.srt.registers: its import-time effects stay.
    assert "Plugin" not in dead["sglang/srt/user.py"]
