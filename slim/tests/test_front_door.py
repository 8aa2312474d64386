"""Front doors: removed flags, flag values, request fields and routes are refused where named."""

import argparse
import ast
import dataclasses
import json

import pytest

from slim.front_door import FRONT_DOOR, HOOKS, entry_doors, front_door_files, hook, module_source
from slim.upstream import default_tree, load_pin

REMOVED = [
    {"id": "flag:--enable-lora", "kind": "flag", "message": "LoRA was removed (not served). To get it back: ..."},
    {"id": "flag:--lora-backend", "kind": "flag", "message": "LoRA was removed (not served). To get it back: ..."},
    {"id": "flag:--old-tp", "kind": "flag", "message": "the old alias was removed."},
    {"id": "flag:--lora-config", "kind": "flag", "message": "LoRA was removed (not served). To get it back: ..."},
    {"id": "flag:--lora-paths", "kind": "flag", "message": "LoRA was removed (not served). To get it back: ..."},
    {"id": "flag:--device=npu", "kind": "flag_value", "message": "Ascend NPU was removed (not NVIDIA)."},
    {"id": "flag:--mamba-backend=triton", "kind": "flag_value", "message": "Mamba was removed."},
    {"id": "flag:--speculative-algorithm=NGRAM", "kind": "flag_value", "message": "n-gram speculation was removed."},
    {"id": "flag:--quantization=w8a8_int8", "kind": "flag_value", "message": "W8A8 INT8 was removed."},
    {"id": "flag:--quantization=compressed-tensors", "kind": "flag_value", "message": "CT was removed."},
    {"id": "field:GenerateReqInput.image_data", "kind": "field", "message": "image input was removed."},
    {"id": "field:ChatRequest.modalities", "kind": "field", "message": "modalities were removed."},
    {"id": "route:POST /v1/embeddings", "kind": "route", "message": "embeddings were removed (no embedding model)."},
]


@pytest.fixture
def door():
    namespace: dict = {}
    exec(compile(module_source(REMOVED), FRONT_DOOR, "exec"), namespace)
    return namespace


def parser_with_door(door) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sglang serve")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--lora-backend", type=str, default="csgmv")
    parser.add_argument("--device", type=str, default=None, choices=["cuda", "npu", "cpu"])
    parser.add_argument("--tp-size", type=int, default=1)
    parser.add_argument("--mamba-backend", type=str, default="triton", choices=["triton", "flashinfer"])
    parser.add_argument("--speculative-algorithm", type=str, default=None)  # no choices: an enum parses it later
    parser.add_argument("--lora-paths", nargs="*", default=None)
    parser.add_argument("--lora-config", type=json.loads, default="{}")
    parser.add_argument("--old-tp", dest="tp_size", type=int, default=argparse.SUPPRESS)  # a removed alias
    door["refuse_removed_args"](parser)
    return parser


def test_removed_flag_is_an_argparse_error_with_the_message(door, capsys):
    parser = parser_with_door(door)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--enable-lora"])
    assert exit_.value.code == 2 and "--enable-lora: LoRA was removed" in capsys.readouterr().err


def test_a_removed_environment_switch_set_on_is_refused_at_launch_and_its_default_passes(door, capsys, monkeypatch):
    monkeypatch.setenv("SGLANG_MM_BUFFER_SIZE_MB", "0")  # its default spelled out: nothing removed in use
    monkeypatch.setenv("SGLANG_DSA_FUSE_TOPK", "1")  # listed, but not refused: V3.2 models only reach its code
    assert parser_with_door(door).parse_args(["--tp-size", "2"]).tp_size == 2
    monkeypatch.setenv("SGLANG_MM_BUFFER_SIZE_MB", "64")
    with pytest.raises(SystemExit) as exit_:
        parser_with_door(door)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "environment variable SGLANG_MM_BUFFER_SIZE_MB=64: the multimodal" in err
    assert "To get it back: record a scenario" in err


def test_a_removed_flag_named_with_its_default_uses_nothing_removed(door, capsys):
    # Upstream accepts `--lora-backend csgmv` (its default) without LoRA: a generic launch script may name it.
    parser = parser_with_door(door)
    assert parser.parse_args(["--lora-backend", "csgmv"]).lora_backend == "csgmv"
    with pytest.raises(SystemExit):
        parser.parse_args(["--lora-backend", "triton"])
    assert "--lora-backend: LoRA was removed" in capsys.readouterr().err


def test_removed_flag_value_is_refused_and_the_rest_still_parse(door, capsys):
    parser = parser_with_door(door)
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "npu"])
    assert "Ascend NPU was removed" in capsys.readouterr().err
    args = parser.parse_args(["--device", "cuda", "--tp-size", "2"])
    assert (args.device, args.tp_size, args.enable_lora) == ("cuda", 2, False)  # defaults of removed flags stay
    assert parser.parse_args([]).device is None
    assert parser.parse_args([]).mamba_backend == "triton"  # a removed value that is the default: no error


def test_an_enum_parsed_value_is_refused_in_any_case(door, capsys):
    parser = parser_with_door(door)
    for value in ("NGRAM", "ngram"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--speculative-algorithm", value])
        assert "n-gram speculation was removed" in capsys.readouterr().err
    assert parser.parse_args(["--speculative-algorithm", "nextn"]).speculative_algorithm == "nextn"


@dataclasses.dataclass
class Args:  # the fields of parser_with_door's flags, as ServerArgs holds them
    enable_lora: bool = False
    lora_backend: str = "csgmv"
    device: str | None = None
    tp_size: int = 1
    mamba_backend: str = "triton"
    speculative_algorithm: str | None = None
    lora_paths: list = dataclasses.field(default_factory=list)  # the parser's default is None
    lora_config: dict | str = "{}"  # argparse turns the string default into {} through the flag's type


def test_the_python_api_is_refused_what_the_launch_parser_refuses(door, monkeypatch):
    """`sglang.Engine(**kwargs)` builds ServerArgs without the parser: its __post_init__ refuses the
    same removed flags, values (any case) and environment switches, as a ValueError."""
    parser = parser_with_door(door)
    refuse = door["refuse_removed_server_args"]
    refuse(Args(tp_size=2, device="cuda", lora_backend="csgmv", mamba_backend="triton"), parser)
    refuse(Args(**vars(parser.parse_args(["--tp-size", "2"]))), parser)  # the launch: parsed defaults
    for args, message in ((Args(enable_lora=True), "LoRA was removed"), (Args(lora_backend="triton"), "LoRA"),
                          (Args(device="npu"), "Ascend NPU was removed"),
                          (Args(speculative_algorithm="ngram"), "n-gram speculation was removed"),
                          (Args(lora_paths=["a"]), "LoRA")):
        with pytest.raises(ValueError, match=message):
            refuse(args, parser)
    monkeypatch.setenv("SGLANG_MM_BUFFER_SIZE_MB", "64")
    with pytest.raises(ValueError, match="environment variable SGLANG_MM_BUFFER_SIZE_MB=64"):
        refuse(Args(), parser)


def test_a_removed_quantization_the_checkpoint_declares_is_refused(door):
    """No flag named it: ModelConfig resolved it from config.json (either spelling of compressed-tensors)."""
    for method, message in (("w8a8_int8", "W8A8 INT8 was removed"), ("compressed_tensors", "CT was removed")):
        with pytest.raises(ValueError, match=message):
            door["refuse_removed_quantization"](method)
    for method in ("fp8", "w4afp8", None):
        door["refuse_removed_quantization"](method)


def test_a_removed_field_set_by_the_client_is_refused(door):
    @dataclasses.dataclass
    class GenerateReqInput:
        text: str = ""
        image_data: list | None = None

    assert door["refused_fields"](GenerateReqInput(text="hi")) is None
    with pytest.raises(ValueError, match="image_data: image input was removed"):
        door["refuse_removed_fields"](GenerateReqInput(text="hi", image_data=["x.png"]))
    pydantic = pytest.importorskip("pydantic")

    class ChatRequest(pydantic.BaseModel):
        modalities: list[str] | None = None

    assert door["refused_fields"](ChatRequest()) is None
    assert door["refused_fields"](ChatRequest(modalities=None)).startswith("modalities:")  # named, even as null


def test_a_removed_route_answers_410_with_the_message(door):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    app = fastapi.FastAPI()
    door["add_refused_routes"](app)
    answer = TestClient(app).post("/v1/embeddings", json={"input": "x"})
    assert answer.status_code == 410 and "embeddings were removed" in answer.json()["error"]["message"]


SOURCE = '''import os


class ServerArgs:
    @staticmethod
    def add_cli_args(parser):
        """Doc."""
        parser.add_argument("--x")
        parser.add_argument("--y")


app = make_app(
    title="t",
)


async def handle(obj):
    """Doc."""
    return obj
'''


def test_hooks_splice_a_statement_and_its_import_where_named():
    end = hook(SOURCE, "ServerArgs.add_cli_args", "end", "refuse(parser)", "refuse")
    assert '        parser.add_argument("--y")\n        from sglang.srt.slim_front_door import refuse\n' \
           '        refuse(parser)\n\n\napp' in end
    after = hook(SOURCE, "app", "after", "add(app)", "add")
    assert ')\nfrom sglang.srt.slim_front_door import add\nadd(app)\n\n\nasync' in after
    start = hook(SOURCE, "handle", "start", "if x:\n    return 1", "x")
    assert '"""Doc."""\n    from sglang.srt.slim_front_door import x\n    if x:\n        return 1\n' \
           '    return obj' in start
    for text in (end, after, start):
        ast.parse(text)
    with pytest.raises(ValueError, match="not found"):
        hook(SOURCE, "Missing.f", "end", "x", "x")


def test_hooks_fit_the_real_upstream_files():
    tree = default_tree(load_pin())
    if not tree.is_dir():
        pytest.skip("upstream not fetched: run `slim fetch`")
    files = front_door_files(REMOVED, lambda path: (tree / path).read_text())
    assert set(files) == {FRONT_DOOR} | {h[0] for h in HOOKS}
    for path, text in files.items():
        ast.parse(text)
        if path != FRONT_DOOR:
            assert text.count("from sglang.srt.slim_front_door import") == sum(h[0] == path for h in HOOKS)
    assert front_door_files([], lambda path: "") == {}


def test_a_removed_entry_point_exits_with_the_message_and_imports_as_absent(tmp_path):
    import subprocess
    import sys

    item = {"id": "entry:pkg.tool", "kind": "entry_point", "source": "pkg/tool.py",
            "message": "the tool was removed (a debug script). To get it back: ..."}
    doors = entry_doors([item, {**item, "id": "entry:gone.x", "source": "gone/x.py"}], {"pkg/__init__.py"})
    assert list(doors) == ["pkg/tool.py"]  # no door where the package itself went
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "tool.py").write_text(doors["pkg/tool.py"])
    run = subprocess.run([sys.executable, "-m", "pkg.tool"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.strip() == "pkg.tool: " + item["message"]
    guarded = "try:\n    import pkg.tool\nexcept ImportError as e:\n    print(type(e).__name__, e.name)"
    run = subprocess.run([sys.executable, "-c", guarded], cwd=tmp_path, capture_output=True, text=True)
    assert run.stdout.strip() == "ModuleNotFoundError pkg.tool"


def test_a_removed_subcommand_is_refused_with_its_message(tmp_path):
    """`sglang generate` imports sglang.cli.generate in its branch: the door there answers it."""
    import subprocess
    import sys

    item = {"id": "script:tool generate", "kind": "console_script", "name": "tool generate",
            "source": "pkg/generate.py", "message": "`tool generate` was removed (diffusion only). To get it back: ..."}
    doors = entry_doors([item], {"pkg/__init__.py", "pkg/main.py"})
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "main.py").write_text(
        "import sys\nif sys.argv[1] == 'generate':\n    from pkg.generate import generate\n")
    (tmp_path / "pkg" / "generate.py").write_text(doors["pkg/generate.py"])
    run = subprocess.run([sys.executable, "-m", "pkg.main", "generate"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1 and run.stderr.strip().endswith("ModuleNotFoundError: " + item["message"])
    assert entry_doors([{**item, "kind": "flag"}], {"pkg/__init__.py"}) == {}
