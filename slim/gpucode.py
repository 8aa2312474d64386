"""GPU code inside a shared library: the bytes of its CUDA fat binaries, split into cubin (ELF) and PTX.

No cuobjdump on the CPU side, so the ELF section table is read with pyelftools and the fat binary
container (`.nv_fatbin`: headers with magic 0xBA55ED50, then one entry per cubin or PTX, each with
its kind, arch and payload size) is walked directly. Payload sizes are as stored (possibly
compressed), i.e. what the file costs to carry.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

FATBIN_SECTIONS = (".nv_fatbin", "__nv_relfatbin")
FATBIN_MAGIC = 0xBA55ED50
KINDS = {1: "ptx", 2: "elf"}
_HEADER = struct.Struct("<IHHQ")  # magic, version, header size, payload size
_ENTRY = struct.Struct("<HHIQ")  # kind, unknown, entry header size, payload size
_ARCH_AT = 28  # offset of the sm number inside an entry header


def fatbin_entries(blob: bytes) -> Counter:
    """(kind, sm) -> payload bytes over every fat binary in a section; bytes that do not parse
    (a foreign layout) count as ('unparsed', 0) rather than vanish."""
    sizes: Counter = Counter()
    off = 0
    while off + _HEADER.size <= len(blob):
        magic, _, header_size, fat_size = _HEADER.unpack_from(blob, off)
        end = off + header_size + fat_size
        if magic != FATBIN_MAGIC or end > len(blob):
            sizes[("unparsed", 0)] += len(blob) - off
            break
        entry = off + header_size
        while entry + _ENTRY.size <= end:
            kind, _, entry_header, size = _ENTRY.unpack_from(blob, entry)
            arch = struct.unpack_from("<I", blob, entry + _ARCH_AT)[0] if entry + _ARCH_AT + 4 <= end else 0
            sizes[(KINDS.get(kind, f"kind{kind}"), arch)] += size
            entry += entry_header + size
        off = (end + 7) // 8 * 8  # fat binaries in one section are 8-byte aligned
    return sizes


def gpu_code(path: Path) -> dict:
    """Fat-binary bytes of one shared library: total section size, cubin and PTX payloads, cubin archs.
    A file that is not ELF (a linker script, a truncated file) has no GPU code."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            blobs = [s.data() for name in FATBIN_SECTIONS if (s := elf.get_section_by_name(name)) is not None]
    except (ELFError, OSError, struct.error):
        blobs = []
    entries: Counter = Counter()
    for blob in blobs:
        entries += fatbin_entries(blob)
    return {
        "fatbin": sum(len(b) for b in blobs),
        "elf": sum(n for (kind, _), n in entries.items() if kind == "elf"),
        "ptx": sum(n for (kind, _), n in entries.items() if kind == "ptx"),
        "elf_archs": sorted({f"sm_{arch}" for (kind, arch) in entries if kind == "elf"}),
    }
