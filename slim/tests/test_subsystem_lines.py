"""benchmarks/subsystem_lines.py: per-subsystem .py files and lines, upstream vs a written tree."""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "subsystem_lines", Path(__file__).resolve().parents[2] / "benchmarks" / "subsystem_lines.py")
subsystem_lines = sys.modules.setdefault("subsystem_lines", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(subsystem_lines)


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_counts_what_was_written_per_subsystem_and_in_total(tmp_path):
    upstream = write(tmp_path / "up", {"sglang/srt/layers/a.py": "1\n2\n3\n", "sglang/srt/lora/b.py": "1\n2\n",
                                       "sglang/srt/layers/data.json": "{}\n", "sglang/multimodal_gen/t.py": "1\n"})
    slim = write(tmp_path / "slim", {"sglang/srt/layers/a.py": "1\n"})
    table = subsystem_lines.subsystem_table(upstream, slim, depth=3)
    assert table.loc["sglang/srt/layers"].tolist() == [1, 3, 1, 1, 0, 2]
    assert table.loc["sglang/srt/lora"].tolist() == [1, 2, 0, 0, 1, 2]  # removed whole: zero, not missing
    assert "sglang/multimodal_gen" not in table.index  # out of scope, as in REMOVED.md
    text = subsystem_lines.markdown(table, top=1)
    assert "| `sglang/srt/layers` | 1 | 3 | 1 | 1 | 33.3% |" in text
    assert "| 1 smaller subsystems | 1 | 2 | 0 | 0 | 0.0% |" in text
    assert text.endswith("| **total** | 2 | 5 | 1 | 1 | 20.0% |")
