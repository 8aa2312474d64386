"""Before/after source pairs for each transform (like LibCST's CodemodTest)."""

import textwrap

import libcst as cst

from slim.transforms.base import FillEmptyBlocks
from slim.transforms.imports import ImportPruner
from slim.transforms.platform import PlatformFolder
from slim.transforms.registry import RegistryPruner
from slim.transforms.rewrite import rewrite_module


def transformed(source: str, *transforms: cst.CSTTransformer) -> str:
    module = cst.parse_module(textwrap.dedent(source))
    for transform in (*transforms, FillEmptyBlocks()):
        module = module.visit(transform)
    return module.code


def assert_transform(before: str, after: str, *transforms: cst.CSTTransformer) -> None:
    assert transformed(before, *transforms) == textwrap.dedent(after)


def fold() -> PlatformFolder:
    return PlatformFolder({"is_hip", "is_npu"}, {"_is_hip", "_use_aiter"})


def test_if_else_keeps_the_nvidia_branch():
    assert_transform("""\
        if _is_hip:
            a = 1
        else:
            a = 2
        """, "a = 2\n", fold())


def test_if_not_probe_keeps_its_body_and_nothing_else():
    assert_transform("""\
        def f():
            if not _is_hip:
                x()
            return 1
        """, """\
        def f():
            x()
            return 1
        """, fold())


def test_elif_chain_and_helper_calls():
    assert_transform("""\
        if is_hip():
            a = 1
        elif cond:
            a = 2
        elif is_npu():
            a = 3
        else:
            a = 4
        """, """\
        if cond:
            a = 2
        else:
            a = 4
        """, fold())


def test_no_if_false_left_and_empty_blocks_get_pass():
    assert_transform("""\
        def f():
            if _is_hip:
                g()
        """, """\
        def f():
            pass
        """, fold())


def test_boolean_operators_and_conditional_expressions():
    assert_transform("""\
        x = 1 if _use_aiter else 2
        if (a or _is_hip) and not is_npu():
            y = 3
        if b and _is_hip:
            z = 4
        """, """\
        x = 2
        if a:
            y = 3
        """, fold())


def test_unknown_names_are_left_alone():
    source = "if _is_cuda and is_hip_like():\n    a = 1\n"
    assert transformed(source, fold()) == source


def test_registry_entries_naming_deleted_classes_go():
    assert_transform("""\
        EntryClass = [A, B]
        MODELS = {"a": A, "b": B}
        def f():
            local = [B]
        """, """\
        EntryClass = [A]
        MODELS = {"a": A}
        def f():
            local = [B]
        """, RegistryPruner({"B"}))


def test_import_pruner_keeps_valid_syntax():
    assert_transform("""\
        import json, os
        from typing import Any, List
        from x import (a,
                       b)
        """, """\
        import os
        from typing import List
        from x import (a,
                       )
        """, ImportPruner({"json", "Any", "b"}))


def test_rewrite_module_deletes_folds_and_prunes_imports():
    before = textwrap.dedent('''\
        import json
        from sglang.srt.utils import is_hip

        _is_hip = is_hip()


        class A:
            @staticmethod
            def never(x):
                return json.dumps(x)

            def named(self, x: int = 1) -> int:
                """Doc."""
                y = x
                return y


        class B:
            def gone(self):
                return 1


        def f(x):
            if _is_hip:
                return -x
            return x


        REG = [A, C]
        ''').encode()
    after = rewrite_module(before, {("A.never", 8): "delete", ("B.gone", 19): "delete"},
                           {"is_hip"}, {"_is_hip"}, {"C"}).decode()
    assert after == textwrap.dedent('''\
        from sglang.srt.utils import is_hip

        _is_hip = is_hip()


        class A:

            def named(self, x: int = 1) -> int:
                """Doc."""
                y = x
                return y


        class B:
            pass


        def f(x):
            return x


        REG = [A]
        ''')
    compile(after, "after", "exec")


def test_a_stub_keeps_decorators_and_signature_and_its_imports_follow_the_body():
    before = textwrap.dedent('''\
        import json
        from typing import Any


        @register_custom_op(mutates_args=["out"])
        def rare(x: Any,
                 out=None) -> str:
            """Only a branch no recording took calls this."""
            return json.dumps(x)


        def never():
            return 1


        def kept():
            return 2
        ''').encode()
    after = rewrite_module(before, {("rare", 5): "stub", ("never", 12): "delete"}, tidy=True).decode()
    assert after == textwrap.dedent('''\
        from typing import Any


        @register_custom_op(mutates_args=["out"])
        def rare(x: Any,
                 out=None) -> str:
            raise NotImplementedError('slim removed the body of rare: it never ran in any recording (see sglang/REMOVED.md)')


        def kept():
            return 2
        ''')  # noqa: E501 (tidy: the deleted def's trailing blank lines went with it; json with rare's body)


def test_a_stub_whose_body_opens_with_a_decorated_def_loses_the_decorator_too():
    before = textwrap.dedent('''\
        def example():
            @contextmanager
            def inner():
                yield
            return inner
        ''').encode()
    after = rewrite_module(before, {("example", 1): "stub"}, tidy=True).decode()
    assert after == "def example():\n    raise NotImplementedError(" \
        "'slim removed the body of example: it never ran in any recording (see sglang/REMOVED.md)')\n"


def test_rewrite_keeps_a_bom_and_is_a_no_op_without_edits():
    source = b"\xef\xbb\xbf# c\nx = 1\n"
    assert rewrite_module(source, {}) == source


def test_an_emptied_type_checking_or_probe_block_goes_with_its_typing_import():
    before = textwrap.dedent("""\
        from typing import TYPE_CHECKING

        from sglang.srt.x import used

        if TYPE_CHECKING:
            from sglang.srt.y import Batch
        if _is_cuda:
            from sglang.srt.kernels import op
        if _is_cuda:
            from sglang.srt.kernels import kept
        else:
            kept = None
        """).encode()
    after = rewrite_module(before, {}, dead_imports={"Batch", "op", "kept"}).decode()
    assert "TYPE_CHECKING" not in after and "import op" not in after
    assert after.count("if _is_cuda:") == 1 and after.count("pass") == 1  # the one with an else stays, filled
    assert "from sglang.srt.x import used" in after
