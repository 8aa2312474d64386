"""`slim bundle`: the air-gapped runtime for the slimmed tree, packed as carryable tar.xz parts.

Layout of the unpacked bundle: site/ (the third-party runtime, pruned by slim/bundle_plan.py),
tree/ (the slimmed tree: tree/python/sglang, byte-for-byte the --tree folder), manifest.json.
The output folder holds bundle.tar.xz.NNN parts, SHA256SUMS, unpack.sh and the same manifest.json;
it is written to a temporary sibling and renamed into place, so an interrupted run leaves any
previous output as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from slim.bundle_plan import RULES, Decision, Usage, is_shared_lib, plan_bundle
from slim.errors import SlimError
from slim.gpucode import gpu_code
from slim.jit_cache import bundle_entry

MANIFEST_SCHEMA = "slim-bundle/1"
PART_PREFIX = "bundle.tar.xz."
UNPACK_SH = """#!/bin/sh
# Unpack this bundle: sh unpack.sh DEST  ->  DEST/site (on PYTHONPATH), DEST/tree/python (slimmed sglang)
set -eu
mkdir -p "$1"
DEST=$(cd "$1" && pwd)
cd "$(dirname "$0")"
sha256sum -c --quiet SHA256SUMS
cat bundle.tar.xz.* | xz -d | tar -x -C "$DEST"
# The JIT caches of the recorded scenarios, where the bundle has them: under $SLIM_JIT_HOME (default
# $HOME) if they fit this GPU and the bundled runtime, else one line says why not.
if [ -f jit-cache.tar.xz ]; then
  python3 jit_cache.py install jit-cache.tar.xz manifest.json "$DEST/site" "${SLIM_JIT_HOME:-$HOME}"
fi
"""
NOT_FROM_A_WHEEL = "(not from a wheel)"


@dataclass(frozen=True)
class Upstream:
    """Every upstream file: site-relative path -> (distribution, unpacked size), and where its bytes are."""
    files: dict[str, tuple[str, int]]
    wheel_of: dict[str, Path]


def site_files(site: Path) -> dict[str, int]:
    """Site-relative path -> size for every regular file (symlinks followed)."""
    return {p.relative_to(site).as_posix(): p.stat().st_size for p in sorted(site.rglob("*")) if p.is_file()}


def dist_name(wheel: Path) -> str:
    return wheel.name.split("-", 1)[0]


def upstream_files(site: Path, wheels: Path | None) -> Upstream:
    """The pinned wheels' contents (what upstream ships), plus any site file no wheel holds."""
    files: dict[str, tuple[str, int]] = {}
    wheel_of: dict[str, Path] = {}
    for wheel in sorted(wheels.glob("*.whl")) if wheels else []:
        try:
            with zipfile.ZipFile(wheel) as z:
                for info in z.infolist():
                    if not info.is_dir():
                        files[info.filename] = (dist_name(wheel), info.file_size)
                        wheel_of[info.filename] = wheel
        except zipfile.BadZipFile as e:
            raise SlimError(f"{wheel} is not a wheel: {e}") from None
    for rel, size in site_files(site).items():
        files.setdefault(rel, (NOT_FROM_A_WHEEL if wheels else rel.split("/", 1)[0], size))
    return Upstream(files, wheel_of)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upstream_gpu_code(rel: str, site: Path, upstream: Upstream, scratch: Path) -> dict:
    """GPU code of one upstream shared library: from the site, or extracted from its wheel when
    the site does not have it (the hand-dropped FA3 library alone is 1.1 GB)."""
    if (site / rel).is_file():
        return gpu_code(site / rel)
    with zipfile.ZipFile(upstream.wheel_of[rel]) as z:
        extracted = Path(z.extract(rel, scratch))
    try:
        return gpu_code(extracted)
    finally:
        extracted.unlink()


def library_table(decisions: list[Decision], upstream: Upstream, gpu: dict[str, dict]) -> list[dict]:
    """Per distribution: bytes and files upstream, kept; GPU code upstream and kept (pure)."""
    rows: dict[str, dict] = defaultdict(lambda: {
        "upstream_bytes": 0, "kept_bytes": 0, "files_upstream": 0, "files_kept": 0,
        "gpu_fatbin_upstream": 0, "gpu_fatbin_kept": 0, "gpu_elf_upstream": 0, "gpu_elf_kept": 0,
        "gpu_ptx_upstream": 0, "gpu_ptx_kept": 0})
    for d in decisions:
        dist, size = upstream.files[d.path]
        row = rows[dist]
        row["upstream_bytes"] += size
        row["files_upstream"] += 1
        code = gpu.get(d.path, {})
        for kind in ("fatbin", "elf", "ptx"):
            row[f"gpu_{kind}_upstream"] += code.get(kind, 0)
            if d.keep:
                row[f"gpu_{kind}_kept"] += code.get(kind, 0)
        if d.keep:
            row["kept_bytes"] += size
            row["files_kept"] += 1
    return [{"library": dist, **row} for dist, row in sorted(rows.items())]


def rule_table(decisions: list[Decision], upstream: Upstream) -> dict[str, dict]:
    table = {rule: {"keep": keep, "files": 0, "bytes": 0} for rule, keep in RULES.items()}
    for d in decisions:
        table[d.rule]["files"] += 1
        table[d.rule]["bytes"] += upstream.files[d.path][1]
    return table


def totals(libraries: list[dict]) -> dict:
    keys = [k for k in libraries[0] if k != "library"] if libraries else []
    return {k: sum(row[k] for row in libraries) for k in keys}


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Same bytes in, same archive out: no owners or times from this machine.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def _write_tar(members: list[tuple[Path, str]], manifest: bytes, sink) -> None:
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for src, arcname in members:
            info = _normalized(tar.gettarinfo(src, arcname))
            if info.issym():  # the site comes from wheels, which hold no links; store the bytes
                info = _normalized(tarfile.TarInfo(arcname))
                info.size = src.stat().st_size
            with open(src, "rb") as f:
                tar.addfile(info, f)
        info = _normalized(tarfile.TarInfo("manifest.json"))
        info.size = len(manifest)
        tar.addfile(info, _BytesReader(manifest))


class _BytesReader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        chunk, self.at = self.data[self.at:end], min(end, len(self.data))
        return chunk


def pack_parts(members: list[tuple[Path, str]], manifest: bytes, out: Path, part_size: int,
               preset: str = "-9") -> list[dict]:
    """tar | xz (all cores), cut into parts of at most part_size bytes: name, size, sha256 each."""
    if shutil.which("xz") is None:
        raise SlimError("xz not found on PATH: install xz-utils")
    xz = subprocess.Popen(["xz", preset, "-T0", "-c"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    errors: list[BaseException] = []

    def feed() -> None:
        try:
            _write_tar(members, manifest, xz.stdin)
        except BaseException as e:  # reported by the caller, after xz is reaped
            errors.append(e)
        finally:
            xz.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    parts: list[dict] = []
    chunk = bytearray()
    try:
        while True:
            data = xz.stdout.read(1 << 20)
            if data:
                chunk += data
            while len(chunk) >= part_size or (not data and chunk):
                parts.append(_write_part(out, len(parts), bytes(chunk[:part_size])))
                del chunk[:part_size]
            if not data:
                break
    finally:
        writer.join()
        if xz.wait() != 0 and not errors:
            errors.append(SlimError(f"xz failed with exit status {xz.returncode}"))
    if errors:
        raise errors[0]
    return parts


def _write_part(out: Path, index: int, data: bytes) -> dict:
    name = f"{PART_PREFIX}{index:03d}"
    (out / name).write_bytes(data)
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def check_inputs(deps_site: Path, tree: Path, out: Path, part_size: int) -> None:
    """Every defect of the arguments, before anything is written."""
    if not deps_site.is_dir():
        raise SlimError(f"no deps site at {deps_site}: run `bash ci/build_gpu_runtime.sh` first")
    if not (tree / "python" / "sglang" / "__init__.py").is_file():
        raise SlimError(f"{tree} is not a slimmed tree (no python/sglang/__init__.py): run `slim apply`")
    if part_size < 1 << 20:
        raise SlimError(f"part size {part_size} bytes is below 1 MiB")
    if out.exists() and not out.is_dir():
        raise SlimError(f"{out} exists and is not a folder")
    if out.resolve() in (deps_site.resolve(), tree.resolve()) or deps_site.resolve() in out.resolve().parents:
        raise SlimError(f"--out {out} must not be or lie inside an input folder")


def build_bundle(deps_site: Path, tree: Path, out: Path, usage: Usage, wheels: Path | None,
                 part_size: int, recordings: list[str], preset: str = "-9", jit_cache: Path | None = None) -> dict:
    """Plan, measure, pack; replace `out` only once everything is written. Returns the manifest.
    `jit_cache`: a JIT cache tar (ci/gpu_session.sh's) shipped beside the parts, installed by unpack.sh."""
    from slim.apply import tree_digest, tree_files

    check_inputs(deps_site, tree, out, part_size)
    if jit_cache is not None and not jit_cache.is_file():
        raise SlimError(f"no JIT cache at {jit_cache} (ci/gpu_session.sh brings one back as $OUT/jit-cache.tar.xz)")
    upstream = upstream_files(deps_site, wheels)
    present = set(site_files(deps_site))
    decisions = plan_bundle(upstream.files, present, usage)
    kept = [d.path for d in decisions if d.keep]
    tree_rel = sorted(tree_files(tree))  # every file, as tree_digest counts them
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        with tempfile.TemporaryDirectory(dir=staging) as scratch:
            gpu = {d.path: upstream_gpu_code(d.path, deps_site, upstream, Path(scratch))
                   for d in decisions if is_shared_lib(d.path)}
        libraries = library_table(decisions, upstream, gpu)
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "recordings": recordings,
            "part_size": part_size,
            "tree_digest": tree_digest(tree),
            "layout": {"site": "site/ (PYTHONPATH)", "tree": "tree/ (slim verify --tree; tree/python holds sglang)"},
            "totals": totals(libraries),
            "libraries": libraries,
            "rules": rule_table(decisions, upstream),
            "gpu_code": {p: code for p, code in gpu.items() if code["fatbin"]},
            "kept": [[f"site/{p}", upstream.files[p][1], sha256(deps_site / p)] for p in kept]
            + [[f"tree/{p}", (tree / p).stat().st_size, sha256(tree / p)] for p in tree_rel],
            "pruned": [[d.path, upstream.files[d.path][1], d.rule, d.detail] for d in decisions if not d.keep],
        }
        members = [(deps_site / p, f"site/{p}") for p in kept] + [(tree / p, f"tree/{p}") for p in tree_rel]
        inner = json.dumps(manifest, indent=1).encode() + b"\n"
        parts = pack_parts(members, inner, staging, part_size, preset)
        manifest["parts"] = parts
        if jit_cache is not None:
            try:
                manifest["jit_cache"] = bundle_entry(jit_cache, staging)
            except ValueError as error:
                raise SlimError(str(error)) from None
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        listed = parts + manifest.get("jit_cache", {}).get("files", [])
        (staging / "SHA256SUMS").write_text("".join(f"{p['sha256']}  {p['name']}\n" for p in listed))
        (staging / "unpack.sh").write_text(UNPACK_SH)
        os.chmod(staging, 0o755)
        _replace_dir(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _replace_dir(new: Path, out: Path) -> None:
    # Two renames: the old output stays complete until the new one is complete beside it.
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def summary(manifest: dict) -> dict:
    """The small, committable part of a manifest: no per-file lists."""
    keep = ("schema", "recordings", "part_size", "tree_digest", "totals", "libraries", "rules", "parts")
    keep += ("jit_cache",) if "jit_cache" in manifest else ()
    return {k: manifest[k] for k in keep} | {
        "gpu_code": manifest["gpu_code"],
        "pruned_examples": _pruned_examples(manifest["pruned"]),
    }


def _pruned_examples(pruned: list[list]) -> dict[str, list[str]]:
    """Per rule, the largest pruned top-level folders or files (by bytes), to read the rule by."""
    by_rule: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path, size, rule, _ in pruned:
        depth = {"never-imported": 1, "wheel-data": 1, "hand-dropped": 3}.get(rule)
        head = "/".join(path.split("/")[:depth])
        by_rule[rule][head] += size
    return {rule: [f"{name} ({size:,} B)" for name, size in sorted(heads.items(), key=lambda kv: -kv[1])[:15]]
            for rule, heads in sorted(by_rule.items())}
