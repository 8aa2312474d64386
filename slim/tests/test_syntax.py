"""The shared statement walker and the one platform test (slim/syntax.py, slim/platform_names.py)."""

import ast
import textwrap

from slim.check import _bindings, _platform_only
from slim.platform_names import combined, truth
from slim.syntax import module_imports, names_bound


def _parse(source: str) -> ast.Module:
    return ast.parse(textwrap.dedent(source))


def test_names_bound_by_one_statement():
    tree = _parse("""
        import a.b, c as d
        from m import *
        x, (y, z) = 1, (2, 3)
        with open(f) as h: pass
        for i in []: pass
        del x
    """)
    assert [names_bound(s) for s in tree.body] == [{"a", "d"}, set(), {"x", "y", "z"}, {"h"}, {"i"}, set()]


def test_module_level_walk_skips_defs():
    tree = _parse("""
        if X:
            import a
        try:
            import b
        except ImportError:
            import c
        def f():
            import d
    """)
    assert [s.names[0].name for s in module_imports(tree)] == ["a", "b", "c"]
    assert _bindings(tree)[0] == {"a", "b", "c", "f"}


def test_three_valued_platform_logic():
    helpers, constants = {"is_hip"}, {"_is_hip"}
    test = lambda source: truth(ast.parse(source, mode="eval").body, helpers, constants)  # noqa: E731
    assert test("_is_hip") is False and test("is_hip()") is False and test("is_hip(1)") is None
    assert test("not _is_hip") is True and test("x and _is_hip") is False and test("x or _is_hip") is None
    assert test("not (x or not is_hip())") is False
    assert combined([False, True], is_and=False) is True and combined([True, True], is_and=True) is True


def test_platform_only_names_follow_the_folding():
    """Bound only where the folder drops code: the `else` of `if not _is_hip`, not `if _is_cuda or _is_hip`."""
    tree = _parse("""
        from sglang.srt.utils import is_hip
        _is_hip = is_hip()
        if _is_cuda or _is_hip:
            from kernels import rmsnorm
        if not _is_hip:
            cuda_only = 1
        else:
            hip_only = 1
        if _is_hip:
            also_hip = 1
    """)
    assert _platform_only(tree, "sglang/srt/layers/x.py") == {"hip_only", "also_hip"}
