"""`slim bundle`: the keep/prune rules, GPU-code measurement, packing into parts, and the real runtime."""

import json
import os
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from slim import bundle as bundle_mod
from slim.bundle import build_bundle, summary
from slim.bundle_plan import Usage, plan_bundle, site_relative, usage_from_recordings
from slim.errors import SlimError
from slim.gpucode import FATBIN_MAGIC, fatbin_entries, gpu_code
from slim.recording import Recording, load_all

REPO = Path(__file__).resolve().parents[2]


# --- the rules -------------------------------------------------------------------------------

USAGE = Usage(imported=frozenset({"used", "jit", "rootmod", "flashinfer"}),
              mapped=frozenset({"used/_core.so", "used.libs/libdep.so.1"}),
              opened=frozenset({"jit/include/a.cuh", "flashinfer/data/include/rebuilt.cuh"}))
PRESENT = {"used/__init__.py", "used/_core.so", "used/_extra.so", "used/data.json", "used.libs/libdep.so.1",
           "used-1.0.dist-info/METADATA", "unused/__init__.py", "unused-2.0.dist-info/RECORD",
           "rootmod.cpython-312-x86_64-linux-gnu.so", "rootmod.py", "other.py", "used-1.0.data/scripts/x",
           "jit/__init__.py", "jit/include/a.cuh", "jit/include/b.cuh", "flashinfer/data/include/norm.cuh"}


def test_rules_keep_what_was_used_and_say_why():
    upstream = PRESENT | {"used/huge_dropped.so"}
    rules = {d.path: (d.rule, d.keep) for d in plan_bundle(upstream, PRESENT, USAGE)}
    assert rules == {
        "used/__init__.py": ("imported-package", True),
        "used/_core.so": ("mapped", True),
        "used/_extra.so": ("never-mapped", False),
        "used/data.json": ("imported-package", True),  # no opens recorded in 'used': kept
        "used.libs/libdep.so.1": ("mapped", True),
        "used-1.0.dist-info/METADATA": ("metadata", True),
        "unused/__init__.py": ("never-imported", False),
        "unused-2.0.dist-info/RECORD": ("metadata", True),
        "rootmod.cpython-312-x86_64-linux-gnu.so": ("never-mapped", False),
        "rootmod.py": ("imported-package", True),
        "other.py": ("never-imported", False),
        "used-1.0.data/scripts/x": ("wheel-data", False),
        "jit/__init__.py": ("imported-package", True),  # Python files: imports are not per file
        "jit/include/a.cuh": ("opened", True),
        "jit/include/b.cuh": ("never-opened", False),  # opens in 'jit' were recorded
        "flashinfer/data/include/norm.cuh": ("jit-sources", True),  # compiled on a fresh host
        "used/huge_dropped.so": ("hand-dropped", False),
    }


def test_a_mapped_library_is_kept_even_in_a_never_imported_package():
    usage = Usage(frozenset(), frozenset({"preload/libhook.so"}), frozenset())
    [decision] = plan_bundle(["preload/libhook.so"], {"preload/libhook.so"}, usage)
    assert decision.keep and decision.rule == "mapped"


def test_usage_comes_from_every_process_of_every_recording():
    def recording(third_party, libs, opened):
        data = {"processes": [{"third_party": third_party}], "shared_libs": [[p, 1] for p in libs],
                "opened_files": [[p, 1] for p in opened]}
        return Recording(Path("x.json.gz"), data)

    usage = usage_from_recordings([
        recording(["orjson", "os"], ["/opt/rt/deps/site/orjson/o.so", "/usr/lib/libc.so.6"], ["torch/x.py"]),
        recording(["flashinfer"], ["torch/lib/libtorch.so"], ["/opt/rt/deps/site/flashinfer/data/a.cuh"]),
    ])
    assert usage.imported == {"orjson", "os", "flashinfer"}
    assert usage.mapped == {"orjson/o.so"}  # libc and the image's torch are not our files
    assert usage.opened == {"flashinfer/data/a.cuh"}
    assert site_relative("/opt/rt/bundle/site/a/b.py") == "a/b.py"
    assert site_relative("<site>/flashinfer/data/x.cuh") == "flashinfer/data/x.cuh"  # newer recordings


# --- GPU code ----------------------------------------------------------------------------------

def fatbin(entries: list[tuple[int, int, bytes]]) -> bytes:
    """A fat binary: header, then (kind, sm, payload) entries with 64-byte entry headers."""
    body = b""
    for kind, arch, payload in entries:
        header = bytearray(64)
        struct.pack_into("<HHIQ", header, 0, kind, 0, 64, len(payload))
        struct.pack_into("<I", header, 28, arch)
        body += bytes(header) + payload
    return struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body


def elf_with_section(name: str, data: bytes) -> bytes:
    """A minimal ELF64 shared object holding one named section."""
    shstrtab = b"\0" + name.encode() + b"\0.shstrtab\0"
    data_off = 64
    strtab_off = data_off + len(data)
    shoff = (strtab_off + len(shstrtab) + 7) // 8 * 8
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    null = bytes(64)
    section = struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, data_off, len(data), 0, 0, 8, 0)
    strings = struct.pack("<IIQQQQIIQQ", 2 + len(name), 3, 0, 0, strtab_off, len(shstrtab), 0, 0, 1, 0)
    body = header + data + shstrtab
    return body + bytes(shoff - len(body)) + null + section + strings


def test_fatbin_entries_split_cubin_and_ptx_by_arch():
    blob = fatbin([(2, 90, b"c" * 100), (2, 80, b"d" * 40), (1, 90, b"p" * 24)])
    blob += bytes(-len(blob) % 8) + fatbin([(2, 90, b"e" * 8)])  # a second fat binary, 8-aligned
    assert fatbin_entries(blob) == {("elf", 90): 108, ("elf", 80): 40, ("ptx", 90): 24}
    assert fatbin_entries(b"\0" * 32) == {("unparsed", 0): 32}


def test_gpu_code_of_a_library(tmp_path):
    blob = fatbin([(2, 90, b"c" * 100), (1, 90, b"p" * 30)])
    lib = tmp_path / "k.so"
    lib.write_bytes(elf_with_section(".nv_fatbin", blob))
    assert gpu_code(lib) == {"fatbin": len(blob), "elf": 100, "ptx": 30, "elf_archs": ["sm_90"]}
    plain = tmp_path / "plain.so"
    plain.write_bytes(elf_with_section(".text", b"\x90" * 16))
    script = tmp_path / "libc.so"
    script.write_text("GROUP ( /lib/libc.so.6 )\n")  # a linker script named .so
    assert gpu_code(plain)["fatbin"] == gpu_code(script)["fatbin"] == 0


# --- packing -----------------------------------------------------------------------------------

@pytest.fixture
def inputs(tmp_path):
    """A fake deps site (one used package with a GPU library, one unused), its wheels, a slim tree."""
    site = tmp_path / "site"
    files = {
        "used/__init__.py": b"x = 1\n",
        "used/_k.so": elf_with_section(".nv_fatbin", fatbin([(2, 90, b"c" * 64)])),
        "used/blob.bin": os.urandom(2_500_000),  # incompressible: forces more than one 1 MiB part
        "used-1.0.dist-info/METADATA": b"Name: used\n",
        "unused/__init__.py": b"y = 2\n",
    }
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "used-1.0-py3-none-any.whl", "w") as z:
        for rel, data in files.items():
            if not rel.startswith("unused"):
                z.writestr(rel, data)
        z.writestr("used/_dropped.so", elf_with_section(".nv_fatbin", fatbin([(2, 100, b"d" * 192)])))
    tree = tmp_path / "tree"
    (tree / "python/sglang").mkdir(parents=True)
    (tree / "python/sglang/__init__.py").write_text("")
    (tree / "REMOVED.md").write_text("# removed\n")
    usage = Usage(frozenset({"used"}), frozenset({"used/_k.so"}), frozenset())
    return site, wheels, tree, usage, files


def test_bundle_packs_parts_that_unpack_to_the_kept_files(inputs, tmp_path):
    site, wheels, tree, usage, files = inputs
    out = tmp_path / "out"
    manifest = build_bundle(site, tree, out, usage, wheels, 1 << 20, ["r1"], preset="-0")
    parts = sorted(out.glob("bundle.tar.xz.*"))
    assert len(parts) == 3 and all(p.stat().st_size <= 1 << 20 for p in parts)
    assert [p["name"] for p in manifest["parts"]] == [p.name for p in parts]

    dest = tmp_path / "unpacked"
    subprocess.run(["sh", str(out / "unpack.sh"), str(dest)], check=True)
    unpacked = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert unpacked == {"site/used/__init__.py", "site/used/_k.so", "site/used/blob.bin",
                        "site/used-1.0.dist-info/METADATA", "tree/python/sglang/__init__.py",
                        "tree/REMOVED.md", "manifest.json"}
    assert (dest / "site/used/blob.bin").read_bytes() == files["used/blob.bin"]

    pruned = {path: rule for path, _, rule, _ in manifest["pruned"]}
    assert pruned == {"unused/__init__.py": "never-imported", "used/_dropped.so": "hand-dropped"}
    kept = {path: (size, digest) for path, size, digest in manifest["kept"]}
    assert kept["site/used/__init__.py"][0] == 6 and len(kept["tree/REMOVED.md"][1]) == 64
    libs = {row["library"]: row for row in manifest["libraries"]}
    assert libs["used"]["gpu_elf_upstream"] == 64 + 192 and libs["used"]["gpu_elf_kept"] == 64
    assert libs["(not from a wheel)"]["kept_bytes"] == 0  # 'unused' is in the site but no wheel
    small = summary(manifest)
    assert "kept" not in small and small["totals"]["gpu_elf_kept"] == 64
    assert json.loads((out / "manifest.json").read_text())["parts"] == manifest["parts"]


def test_bad_input_and_interruption_leave_the_old_output(inputs, tmp_path, monkeypatch):
    site, wheels, tree, usage, _ = inputs
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("previous bundle")
    with pytest.raises(SlimError, match="no deps site"):
        build_bundle(tmp_path / "nowhere", tree, out, usage, wheels, 1 << 20, [])
    with pytest.raises(SlimError, match="not a slimmed tree"):
        build_bundle(site, tmp_path, out, usage, wheels, 1 << 20, [])
    with pytest.raises(SlimError, match="below 1 MiB"):
        build_bundle(site, tree, out, usage, wheels, 1000, [])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_mod, "pack_parts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_bundle(site, tree, out, usage, wheels, 1 << 20, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "site", "tree", "wheels"]  # no temp dirs
    assert [p.name for p in out.iterdir()] == ["old"]


# --- the real runtime (needs ci/build_gpu_runtime.sh's .rt/, which CI does not have) --------------

DEPS_SITE = REPO / ".rt/stage/deps/site"


@pytest.mark.skipif(not DEPS_SITE.is_dir(), reason="no .rt/stage/deps/site: run ci/build_gpu_runtime.sh")
def test_real_plan_keeps_everything_the_recordings_used():
    recordings = load_all(REPO / "coverage_db", "0.5.17")
    usage = usage_from_recordings(recordings)
    present = set(bundle_mod.site_files(DEPS_SITE))
    decisions = {d.path: d for d in plan_bundle(present, present, usage)}
    mapped_here = usage.mapped & present
    assert "sgl_kernel/sm90/common_ops.abi3.so" in mapped_here and "deep_gemm/_C.so" in mapped_here
    assert all(decisions[p].keep for p in mapped_here)
    # only unmapped .so files and never-opened data files (e.g. a py.typed marker) leave an imported package
    def dropped_wrongly(d):
        allowed = d.rule == "never-mapped" or (d.rule == "never-opened" and not d.path.endswith(".py"))
        return not d.keep and not allowed
    assert not any(dropped_wrongly(d) for d in decisions.values() if d.path.split("/")[0] in usage.imported)
    assert all(d.keep for p, d in decisions.items() if ".dist-info/" in p)
    for top in ("sglang", "transformers", "flashinfer", "xgrammar", "IPython"):
        assert not any(d.path.startswith(top + "/") and dropped_wrongly(d) for d in decisions.values())
    assert decisions["cffi/__init__.py"].rule == "never-imported"
