"""Import every module of a tree on a CPU host, native packages stood in as ci/probe_front_door.py does,
and write which imported and which failed with what: run on the slimmed tree and on upstream's, the
two reports say whether slimming broke an import that upstream's own code survives.

    bash ci/probe_env.sh   # the venv (/tmp/probe-venv) and the pinned transformers (/tmp/tf512/site)
    /tmp/probe-venv/bin/python ci/probe_imports.py sglang/python --transformers /tmp/tf512/site --out FILE.json

Left out: upstream's in-package tests, `__main__` modules, multimodal_gen and the launch entry point
(it starts a server). A module whose import runs past 20 s counts as failed (TimeoutError). Mocks make
some imports fail on both trees (an `isinstance` against a mocked class): only the difference says
anything (ci/tests/test_import_probe.py). Needs torch (CPU) and sglang's pure-Python dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import signal
import sys
import types
from pathlib import Path

SKIPPED = (".test.", "multimodal_gen", "__main__", ".launch_server")
TIMEOUT_S = 20


def module_names(tree_python: Path) -> list[str]:
    """Dotted names of the tree's modules under sglang/, packages by their own name."""
    names = (".".join(p.relative_to(tree_python).with_suffix("").parts).removesuffix(".__init__")
             for p in (tree_python / "sglang").rglob("*.py"))
    return sorted(n for n in names if not any(s in f"{n}." for s in SKIPPED))


def _stand_in_natives(transformers: str, tree_python: Path) -> None:
    """The probe's stand-ins for native packages, the pinned transformers, no processor registrations.
    torch's modules that look for Triton are imported first, while it is absent: against the stand-in
    they fail (an `isinstance` against its JITFunction, inductor's kernel-type check)."""
    importlib.import_module("torch.utils.flop_counter")
    importlib.import_module("torch._inductor.compile_fx")
    spec = importlib.util.spec_from_file_location("probe_front_door", Path(__file__).with_name("probe_front_door.py"))
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    sys.meta_path.append(probe._Stand())
    sys.path[:0] = [str(tree_python), transformers]
    utils = types.ModuleType("sglang.srt.configs.utils")  # processor registrations need torchvision
    utils.register_image_processor = utils.register_processor = lambda *a, **k: None
    sys.modules["sglang.srt.configs.utils"] = utils


def _timeout(*_):
    raise TimeoutError(f"import took over {TIMEOUT_S} s")


def import_each(names: list[str]) -> dict[str, str | None]:
    """Each module's import error (type and the message's start), None where it imported."""
    signal.signal(signal.SIGALRM, _timeout)
    outcomes = {}
    for name in names:
        signal.alarm(TIMEOUT_S)
        try:
            importlib.import_module(name)
            outcomes[name] = None
        except BaseException as error:  # SystemExit and KeyboardInterrupt-like refusals count too
            outcomes[name] = f"{type(error).__name__}: {str(error)[:200]}"
        finally:
            signal.alarm(0)
    return outcomes


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("tree_python", type=Path)
    cli.add_argument("--transformers", required=True)
    cli.add_argument("--out", required=True, type=Path)
    args = cli.parse_args()
    names = module_names(args.tree_python)
    _stand_in_natives(args.transformers, args.tree_python)
    outcomes = import_each(names)
    report = {"python": sys.version.split()[0], "command": " ".join(sys.argv),
              "imported": sorted(n for n, e in outcomes.items() if e is None),
              "failed": {n: e for n, e in sorted(outcomes.items()) if e is not None}}
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(f"{len(report['imported'])} of {len(names)} modules imported; report: {args.out}")


if __name__ == "__main__":
    main()
