"""Try the Python API's front door (ServerArgs.__post_init__ -> refuse_removed_server_args) on the
real launch parser of the slimmed tree, on a CPU host without the GPU runtime.

    python3.11 ci/probe_front_door.py sglang/python --transformers DIR --out FILE.json [--items ROWS.json]

With --items (`slim surface --json` output) it also names every flag and flag value of the surface
alone and keeps each argv and outcome; run on upstream's unpacked tree as well (it has no front door:
only those outcomes are written) and compare (ci/tests/test_front_door_probe.py).

It builds `ServerArgs.add_cli_args`'s parser, then asks the front door about (1) the parsed defaults
of a plain launch, (2) the dataclass defaults (`sglang.Engine()` with no kwargs), (3) every
scenario's launch flags, parsed, and (4) `--enable-lora` (removed: must be refused). Needs torch
(CPU) and sglang's pure-Python dependencies; the native packages a CPU host lacks (sgl_kernel,
triton, xgrammar, ...) are stood in by mocks, their capitalised names by pydantic models so that
request models still build. DIR holds the pinned transformers (5.12.1, from deps.tar.xz: the
newest one's configs clash with sglang's). No processor is registered (no torchvision here).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import importlib.abc
import importlib.machinery
import io
import json
import os
import sys
import tomllib
import types
from pathlib import Path
from unittest import mock

import pydantic

NATIVE = {"sgl_kernel", "flashinfer", "deep_gemm", "triton", "cuda", "cutlass", "quack", "tvm_ffi", "pynvml",
          "flash_attn", "torch_memory_saver", "torchao", "xgrammar", "llguidance", "outlines", "interegular",
          "partial_json_parser", "openai_harmony", "pybase64", "setproctitle", "PIL", "python_multipart",
          "multipart", "sentencepiece", "soundfile", "scipy", "pandas", "mistral_common", "gguf", "modelscope",
          "compressed_tensors", "xxhash", "decord", "uvloop", "einops", "torchvision",
          "IPython"}
TYPED = {"xgrammar", "openai_harmony", "partial_json_parser", "llguidance", "outlines"}


class _TypedModule(types.ModuleType):
    """A missing package whose capitalised names are pydantic models (usable as field types)."""
    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (pydantic.BaseModel,), {}) if name[:1].isupper() else mock.MagicMock(name=name)
        setattr(self, name, value)
        return value


class _Stand(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stands in for NATIVE packages that no other finder resolves."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] not in NATIVE:
            return None
        for finder in sys.meta_path:
            if finder is not self and getattr(finder, "find_spec", None) and finder.find_spec(name, path, target):
                return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        if spec.name.split(".")[0] in TYPED:
            return _TypedModule(spec.name)
        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__, module.__name__, module.__version__ = [], spec, spec.name, "0"
        if spec.name == "triton":  # fla's import-time device probe: no GPU backend here
            module.runtime.driver.active.get_current_target.return_value.backend = "cpu"
        return module

    def exec_module(self, module):
        pass


def verdict(refuse, obj, parser) -> str | None:
    try:
        refuse(obj, parser)
    except ValueError as error:
        return str(error)
    return None


def _parse_error(parser, argv: list[str]) -> str | None:
    """The launch parser's error for `argv` (its message), or None when it parses."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(["--model-path", "m", *argv])
    except SystemExit:
        return err.getvalue()
    return None


def _means_default(action, value) -> bool:
    """Naming `value` names the flag's default (an int flag's "1" when its default is 1)."""
    try:
        return value == action.default or (callable(action.type) and action.type(value) == action.default)
    except Exception:  # a type check refusing it (or any other error) means it is no default
        return False


def parser_refusals(parser, door) -> dict:
    """Every removed flag (with a value other than its default) and removed flag value, named on the
    real launch parser: how many it refuses with their own refusal message, and which it does not."""
    actions = parser._option_string_actions
    tried, missed = 0, []
    for flag in sorted(door.REMOVED_FLAGS):
        action = actions.get(flag)
        if action is None:
            continue
        # a value the user could name: one of its removed values (the parser's choices keep only
        # the default of those), else a choice, else a plain one
        removed_values = [v for f, v in sorted(door.REMOVED_FLAG_VALUES) if f == flag]
        value = None if action.nargs == 0 else next(
            v for v in [*removed_values, *(action.choices or []), "1", "2", "x"] if not _means_default(action, v))
        argv = [flag] if value is None else [flag, str(value)]
        tried += 1
        error = _parse_error(parser, argv) or ""
        if door.REMOVED_FLAGS[flag] not in error and door.REMOVED_FLAG_VALUES.get((flag, value), "\0") not in error:
            missed.append(" ".join(argv))
    for flag, value in sorted(door.REMOVED_FLAG_VALUES):
        if flag not in actions or value == actions[flag].default:
            continue
        tried += 1
        if door.REMOVED_FLAG_VALUES[(flag, value)] not in (_parse_error(parser, [flag, value]) or ""):
            missed.append(f"{flag} {value}")
    return {"tried": tried, "refused_with_the_message": tried - len(missed), "not_refused": missed}


def _sample_values(parser, items: list[dict]) -> dict[str, str]:
    """Flag -> a value a user could give it: another on-surface value than the default, else the default
    itself (all its others are removed), else the first of a few plain values this parser takes. The
    outcomes keep each argv, so a comparison of two trees sees when they were asked different things."""
    actions, values = parser._option_string_actions, {}
    defaults = {name: str(action.default) for name, action in actions.items()}
    others = [i for i in items if i["kind"] == "flag_value" and str(i["value"]) != defaults.get(i["flag"])]
    for item in others:
        if item.get("status") != "removed":
            values.setdefault(item["flag"], str(item["value"]))
    for item in items:
        name = item["name"]
        if item["kind"] != "flag" or name in values or name not in actions or actions[name].nargs == 0:
            continue
        default = actions[name].default
        if any(other["flag"] == name for other in others) and default is not None:
            values[name] = str(default)
            continue
        plain = ([str(default + 1)] if type(default) in (int, float) else []) + ["2", "0.5", "{}", "x"]
        values[name] = next((v for v in plain if _parse_error(parser, [name, v]) is None), "x")
    return values


def parser_outcomes(parser, items: list[dict]) -> dict[str, dict]:
    """Every flag and flag value of the surface named alone on the launch parser: its argv, and None where
    it parses, else the parser's error line. Run on upstream's and the slimmed tree's parser, the two
    must agree on every item the surface does not remove."""
    actions, outcomes, values = parser._option_string_actions, {}, _sample_values(parser, items)
    for item in items:
        if item["kind"] == "flag_value":
            argv = [item["flag"], str(item["value"])]
        elif item["kind"] == "flag" and item["name"] in actions:
            argv = [item["name"]] if actions[item["name"]].nargs == 0 else [item["name"], values[item["name"]]]
        else:
            continue
        error = _parse_error(parser, argv)
        outcomes[item["id"]] = {"argv": argv, "error": error.strip().splitlines()[-1] if error else None}
    return outcomes


def api_refusals(parser, refuse, items: list[dict], outcomes: dict[str, dict]) -> dict:
    """The Python API's door (ServerArgs.__post_init__) on each flag and value the surface keeps, as the
    launch parser parsed it: which it refuses (none should be: the door is for removed features only)."""
    tried, refused = 0, []
    for item in items:
        outcome = outcomes.get(item["id"])
        if item.get("status") == "removed" or outcome is None or outcome["error"] is not None:
            continue
        tried += 1
        if verdict(refuse, parser.parse_args(["--model-path", "m", *outcome["argv"]]), parser) is not None:
            refused.append(item["id"])
    return {"tried": tried, "refused": refused}


def main() -> None:
    cli = argparse.ArgumentParser()
    cli.add_argument("tree_python")
    cli.add_argument("--transformers", required=True)
    cli.add_argument("--out", required=True)
    cli.add_argument("--items", help="`slim surface --json` output: adds every item's parse outcome")
    args = cli.parse_args()
    sys.meta_path.append(_Stand())
    sys.path[:0] = [args.tree_python, args.transformers]
    utils = types.ModuleType("sglang.srt.configs.utils")  # processor registrations need torchvision
    utils.register_image_processor = utils.register_processor = lambda *a, **k: None
    sys.modules["sglang.srt.configs.utils"] = utils
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    items = json.loads(Path(args.items).read_text()) if args.items else None
    outcomes = parser_outcomes(parser, items) if items else None
    try:
        from sglang.srt import slim_front_door as door
    except ImportError:  # upstream's tree: its parse outcomes only, to compare the slimmed tree's with
        with open(args.out, "w") as out:
            json.dump({"python": sys.version.split()[0], "command": " ".join(sys.argv),
                       "parser_outcomes": outcomes}, out, indent=1, sort_keys=True)
            out.write("\n")
        return
    refuse = door.refuse_removed_server_args
    defaults = {k: v for k, v in door._defaults(ServerArgs).items() if v is not dataclasses.MISSING}
    rows = {"plain launch (parsed defaults)": verdict(refuse, argparse.Namespace(
                **vars(parser.parse_args(["--model-path", "m"]))), parser),
            "dataclass defaults (Engine())": verdict(refuse, argparse.Namespace(**defaults), parser)}
    lora = argparse.Namespace(**vars(parser.parse_args(["--model-path", "m"])))
    lora.enable_lora = True
    rows["enable_lora=True (removed)"] = verdict(refuse, lora, parser)
    for path in sorted(glob.glob("scenarios/*.toml")):
        launch = tomllib.load(open(path, "rb")).get("server", {}).get("args", [])
        try:
            parsed = parser.parse_args(["--model-path", "m", *launch])
        except SystemExit:
            rows[os.path.basename(path)] = "the launch parser refuses it"
            continue
        rows[os.path.basename(path)] = verdict(refuse, parsed, parser)
    report = {"python": sys.version.split()[0], "command": " ".join(sys.argv), "refused_or_none": rows,
              "launch_parser": parser_refusals(parser, door), "parser_outcomes": outcomes,
              "python_api_on_kept": api_refusals(parser, refuse, items, outcomes) if items else None}
    with open(args.out, "w") as out:
        json.dump(report, out, indent=1, sort_keys=True)
        out.write("\n")
    print(json.dumps({k: (v or "passes")[:90] for k, v in rows.items() if not k.endswith(".toml") or v}, indent=1))


if __name__ == "__main__":
    main()
