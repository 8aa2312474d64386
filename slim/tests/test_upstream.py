import shutil

import pytest

from slim.errors import SlimError
from slim.tests.conftest import make_wheel_tree
from slim.upstream import load_pin, verify_tree


def test_pristine_tree_verifies(wheel_tree):
    root, pin = wheel_tree
    assert verify_tree(root, pin) == root.resolve()


def test_modified_file_is_named(wheel_tree):
    root, pin = wheel_tree
    (root / "sglang/srt/utils.py").write_text("def is_hip():\n    return True\n")
    with pytest.raises(SlimError, match="modified upstream tree: sglang/srt/utils.py differs"):
        verify_tree(root, pin)


def test_added_module_is_named(wheel_tree):
    root, pin = wheel_tree
    (root / "sglang/srt/extra.py").write_text("")
    with pytest.raises(SlimError, match="sglang/srt/extra.py is not part of sglang 0.5.17"):
        verify_tree(root, pin)


def test_missing_file_is_named(wheel_tree):
    root, pin = wheel_tree
    (root / "sglang/srt/models/llama.py").unlink()
    with pytest.raises(SlimError, match="sglang/srt/models/llama.py is missing"):
        verify_tree(root, pin)


def test_wrong_version_is_refused(wheel_tree):
    root, pin = wheel_tree
    (root / "sglang-0.5.17.dist-info").rename(root / "sglang-0.5.18.dist-info")
    with pytest.raises(SlimError, match="holds sglang-0.5.18.dist-info, but slim is pinned to sglang 0.5.17"):
        verify_tree(root, pin)


def test_edited_record_is_refused(wheel_tree):
    root, pin = wheel_tree
    with (root / "sglang-0.5.17.dist-info/RECORD").open("a") as f:
        f.write("sglang/evil.py,,\n")
    with pytest.raises(SlimError, match="differs from the pinned sglang 0.5.17 RECORD"):
        verify_tree(root, pin)


def test_a_tree_may_lack_its_test_folder_whole_but_not_change_it(tmp_path):
    """The GPU runtime carries sglang/test apart (.carry/sglang-test.tar.xz): a site without it is upstream's
    all the same; one with it is checked file by file, as every other folder."""
    root = tmp_path / "upstream"
    pin = make_wheel_tree(root, {"sglang/test/__init__.py": "", "sglang/test/send_one.py": "x = 1\n"})
    assert verify_tree(root, pin) == root.resolve()
    (root / "sglang/test/send_one.py").write_text("x = 2\n")
    with pytest.raises(SlimError, match="sglang/test/send_one.py differs"):
        verify_tree(root, pin)
    (root / "sglang/test/send_one.py").unlink()
    with pytest.raises(SlimError, match="sglang/test/send_one.py is missing"):
        verify_tree(root, pin)
    shutil.rmtree(root / "sglang/test")
    assert verify_tree(root, pin) == root.resolve()


def test_the_pin_is_the_published_wheel():
    pin = load_pin()
    assert pin.version == "0.5.17"
    assert pin.wheel == "sglang-0.5.17-cp312-cp312-manylinux_2_34_x86_64.whl"
    assert len(pin.wheel_sha256) == len(pin.record_sha256) == 64
