"""The serving-surface inventory (slim/surface): derivation pinned on a tiny upstream, status rules on fake
recordings, the policy's checks, and on the real upstream the drift check and the CI gate."""

import io
import json
from pathlib import Path
from textwrap import dedent

import pytest
from rich.console import Console

from slim import upstream as up
from slim.errors import SlimError
from slim.surface import load_surface, read_inventory, write_inventory
from slim.surface.derive import derive_inventory
from slim.surface.policy import POLICY, Entry, load_policy, removed_items
from slim.surface.report import run_surface
from slim.surface.status import launch_evidence, recording_evidence, statuses

REPO = Path(__file__).resolve().parents[2]
FILES = {
    "sglang/srt/entrypoints/http_server.py": """
        import os
        from sglang.srt.managers.io_struct import GenerateReqInput
        from sglang.srt.entrypoints.openai.protocol import ChatCompletionRequest
        from sglang.srt.entrypoints.v1_loads import router as loads_router
        app = FastAPI()
        app.include_router(loads_router)

        @app.get("/health")
        async def health(request: Request):
            return 1

        @app.api_route("/generate", methods=["POST", "PUT"])
        async def generate_request(obj: GenerateReqInput, request: Request):
            return 1

        @app.post("/v1/chat/completions")
        async def chat(request: ChatCompletionRequest, raw: Request):
            return 1

        @app.post(os.environ.get("SGLANG_X_ROUTE", "/api/x"))
        async def x_route():
            return 1
        """,
    "sglang/srt/entrypoints/v1_loads.py": """
        router = APIRouter()

        @router.get("/v1/loads")
        async def get_loads():
            return 1
        """,
    "sglang/srt/parser/reasoning_parser.py": """
        class ReasoningParser:
            DetectorMap = {"deepseek-r1": R1, "qwen3": Q3}
        """,
    "sglang/srt/server_args.py": """
        from sglang.srt.parser.reasoning_parser import ReasoningParser
        BACKENDS = ["triton", "fa3"]

        @dataclasses.dataclass
        class ServerArgs:
            attention_backend: A[Optional[str], Arg(help="which kernels", choices=BACKENDS)] = None
            tp_size: A[int, Arg(help="tensor parallel", aliases=["--tensor-parallel-size"])] = 1
            enable_metrics: A[bool, "export metrics"] = False
            mode: A[Literal["a", "b"], "a mode"] = "a"
            internal: A[int, Arg(help="no flag", no_cli=True)] = 0
            plain: int = 3

            @staticmethod
            def add_cli_args(parser):
                add_cli_args_from_dataclass(parser, ServerArgs)
                parser_choices = list(ReasoningParser.DetectorMap.keys())
                parser.add_argument("--reasoning-parser", choices=["auto"] + parser_choices, default=ServerArgs.mode)
                parser.add_argument("--canary", choices=[m.name for m in Mode])
        """,
    "sglang/srt/managers/io_struct.py": """
        @dataclass
        class GenerateReqInput:
            rid: Optional[str] = field(default=None, kw_only=True)
            text: Optional[str] = None
            sampling_params: Optional[dict] = None
        """,
    "sglang/srt/entrypoints/openai/protocol.py": """
        class StreamOptions(BaseModel):
            include_usage: bool = False

        Options = Union[StreamOptions, None]

        class ChatCompletionRequest(BaseModel):
            messages: List[dict]
            stream_options: Options = None
            temperature: float = 1.0
            _private: int = 0
        """,
    "sglang/srt/sampling/sampling_params.py": """
        class SamplingParams(msgspec.Struct):
            temperature: float = 1.0
            top_p: float = 1.0
            # --- Internal fields (set by normalize) ---
            stop_strs: Optional[str] = None
        """,
    "sglang/bench_serving.py": 'def main():\n    pass\n\nif __name__ == "__main__":\n    main()\n',
    "sglang/test/send_one.py": 'if __name__ == "__main__":\n    pass\n',  # an operator tool: an item
    "sglang/multimodal_gen/runtime.py": 'if __name__ == "__main__":\n    pass\n',  # the diffusion runtime: none
    "sglang-0.5.17.dist-info/entry_points.txt": "[console_scripts]\nsglang = sglang.cli.main:main\n",
    "sglang/cli/main.py": """
        def main():
            subparsers = parser.add_subparsers(dest="subcommand")
            subparsers.add_parser("serve", add_help=False)
            subparsers.add_parser("version")
            args, extra = parser.parse_known_args()
            if args.subcommand == "serve":
                import os
                from sglang.cli.serve import serve
                serve(args, extra)
        """,
}
EXPECTED_IDS = [
    "entry:sglang.bench_serving", "entry:sglang.test.send_one",
    "field:ChatCompletionRequest.messages", "field:ChatCompletionRequest.stream_options",
    "field:ChatCompletionRequest.temperature",
    "field:GenerateReqInput.rid", "field:GenerateReqInput.sampling_params", "field:GenerateReqInput.text",
    "field:StreamOptions.include_usage",
    "flag:--attention-backend", "flag:--attention-backend=fa3", "flag:--attention-backend=triton",
    "flag:--canary", "flag:--enable-metrics", "flag:--mode", "flag:--mode=a", "flag:--mode=b",
    "flag:--reasoning-parser", "flag:--reasoning-parser=auto", "flag:--reasoning-parser=deepseek-r1",
    "flag:--reasoning-parser=qwen3", "flag:--tp-size",
    "route:GET /health", "route:GET /v1/loads", "route:POST /api/x", "route:POST /generate",
    "route:POST /v1/chat/completions", "route:PUT /generate",
    "sampling:temperature", "sampling:top_p",
    "script:sglang", "script:sglang serve", "script:sglang version",
]


@pytest.fixture
def fixture_tree(tmp_path):
    root = tmp_path / "upstream"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(dedent(text))
    return root


@pytest.fixture
def items(fixture_tree):
    return derive_inventory(fixture_tree)["items"]


def by_id(items):
    return {item["id"]: item for item in items}


def test_derivation_of_a_tiny_upstream(fixture_tree, items):
    inventory = derive_inventory(fixture_tree)
    assert [item["id"] for item in items] == EXPECTED_IDS
    assert inventory["unresolved"] == {"route_paths": [], "flag_choices": ["flag:--canary"]}
    assert inventory["counts"]["route"] == 6 and inventory["counts"]["flag_value"] == 7
    got = by_id(items)
    assert got["route:PUT /generate"]["source"] == "sglang/srt/entrypoints/http_server.py::generate_request"
    assert got["route:PUT /generate"]["models"] == ["GenerateReqInput"]
    # a subcommand is refused where its branch imports (`sglang serve` -> sglang/cli/serve.py)
    assert got["script:sglang serve"]["source"] == "sglang/cli/serve.py"
    assert got["script:sglang version"]["source"] == "sglang/cli/main.py"
    assert got["flag:--tp-size"]["aliases"] == ["--tensor-parallel-size"] and got["flag:--tp-size"]["default"] == 1
    assert got["flag:--enable-metrics"]["action"] == "store_true"
    assert got["flag:--reasoning-parser"]["default"] == "a"  # default=ServerArgs.mode, read from the field
    assert got["flag:--canary"]["choices_unresolved"] is True
    assert got["field:StreamOptions.include_usage"]["routes"] == ["route:POST /v1/chat/completions"]
    assert got["field:ChatCompletionRequest.stream_options"]["api"] == "openai"
    assert got["field:GenerateReqInput.rid"]["default"] == "field(default=None, kw_only=True)"


class FakeRecording:
    def __init__(self, command, outputs=(), functions=(), processes=()):
        self.scenario, self.name = "fake", "run1"
        self.data = {"command": command, "outputs": list(outputs), "functions": list(functions),
                     "processes": list(processes)}


def handler(name):
    return ["sglang/srt/entrypoints/http_server.py", name, 1, 1]


def test_status_rules_on_fake_recordings(items):
    rec = FakeRecording(
        ["python", "-m", "sglang.launch_server", "--tp", "2", "--attention-backend=fa3", "--enable-metrics"],
        outputs=[
            {"method": "POST", "path": "/generate", "status": 200,
             "body": {"text": "hi", "sampling_params": {"top_p": 0.5}}},
            {"method": "POST", "path": "/v1/chat/completions", "status": 500, "body": {"messages": []}},
            {"method": "GET", "path": "/health", "status": 200, "body": None},
        ],
        functions=[handler("generate_request"), handler("chat")],  # /health answered but its handler never ran
        processes=[{"argv": ["/site/sglang/bench_serving.py", "--port"]}],
    )
    assert sorted(recording_evidence(items, [rec])) == [
        "entry:sglang.bench_serving", "field:GenerateReqInput.sampling_params", "field:GenerateReqInput.text",
        "flag:--attention-backend", "flag:--attention-backend=fa3", "flag:--enable-metrics",
        "flag:--mode=a",  # left out of the launch: its default ran
        "flag:--tp-size", "route:POST /generate", "sampling:top_p",
    ]
    assert "flag:--mode=a" not in recording_evidence(items, [rec], by_policy=frozenset({"flag:--mode"}))
    assert "flag:--mode=a" not in recording_evidence(items, [FakeRecording(["x", "--mode", "b"])])
    openai = FakeRecording(["x"], outputs=[{"method": "POST", "path": "/v1/chat/completions", "status": 200,
                                            "body": {"messages": [], "temperature": 0}}], functions=[handler("chat")])
    assert sorted(recording_evidence(items, [openai])) == [
        "field:ChatCompletionRequest.messages", "field:ChatCompletionRequest.temperature", "flag:--mode=a",
        "route:POST /v1/chat/completions", "sampling:temperature"]
    script = FakeRecording(["x"], processes=[{"argv": ["/usr/bin/sglang", "serve", "--help"]}])
    assert sorted(recording_evidence(items, [script])) == ["flag:--mode=a", "script:sglang", "script:sglang serve"]


def test_nested_fields_are_recorded_through_the_field_that_holds_them(items):
    """`stream_options` is typed through an alias of StreamOptions: an object sent there records the
    nested model's fields; one with a key StreamOptions lacks belongs to no member and records nothing."""
    assert by_id(items)["field:ChatCompletionRequest.stream_options"]["nests"] == ["StreamOptions"]

    def chat(stream_options):
        return FakeRecording(["x"], outputs=[{"method": "POST", "path": "/v1/chat/completions", "status": 200,
                                              "body": {"messages": [], "stream_options": stream_options}}],
                             functions=[handler("chat")])

    assert "field:StreamOptions.include_usage" in recording_evidence(items, [chat({"include_usage": True})])
    assert "field:StreamOptions.include_usage" in recording_evidence(items, [chat([{"include_usage": True}])])
    assert "field:StreamOptions.include_usage" not in recording_evidence(
        items, [chat({"include_usage": True, "other": 1})])


def test_a_field_counts_by_the_key_a_client_sends_its_alias():
    """`schema_ = Field(alias="schema")` (upstream's JsonSchemaResponseFormat, from the committed
    inventory): clients send `schema`, which is the field's evidence."""
    from slim.paths import DB
    from slim.surface import read_inventory
    from slim.upstream import load_pin

    items = read_inventory(DB, load_pin().version)["items"]

    def chat(json_schema):
        body = {"messages": [], "response_format": {"type": "json_schema", "json_schema": json_schema}}
        return FakeRecording(["x"], outputs=[{"method": "POST", "path": "/v1/chat/completions", "status": 200,
                                              "body": body}], functions=[handler("openai_v1_chat_completions")])

    evidence = recording_evidence(items, [chat({"name": "n", "schema": {"type": "object"}})])
    assert "field:JsonSchemaResponseFormat.schema_" in evidence and "field:JsonSchemaResponseFormat.name" in evidence
    assert "field:JsonSchemaResponseFormat.schema_" not in recording_evidence(items, [chat({"name": "n"})])


def test_one_status_each_and_policy_conflicts(items):
    evidence = {"route:POST /generate": ["fake/run1"], "flag:--tp-size": ["fake/run1"]}
    policy = [Entry("removed", ("flag:--reasoning-parser=qwen3",), "not a DeepSeek model", feature="Qwen parsers"),
              Entry("kept", ("flag:--tp-size", "route:GET /v1/loads"), "needs >= 2 GPUs", scenario="r1_fp8_tp2")]
    rows, warnings = statuses(items, evidence, policy)
    status = {row["id"]: row["status"] for row in rows}
    assert status["route:POST /generate"] == "recorded" and status["flag:--tp-size"] == "recorded"
    assert status["flag:--reasoning-parser=qwen3"] == "removed" and status["route:GET /v1/loads"] == "kept"
    assert status["sampling:top_p"] == "unstatused"
    assert warnings == ["stale keep: flag:--tp-size is recorded by fake/run1; drop it from surface.toml"]
    with pytest.raises(SlimError, match="removes 1 recorded item"):
        statuses(items, evidence, [Entry("removed", ("route:POST /generate",), "r", feature="f")])


def write_policy(tmp_path, text):
    path = tmp_path / "surface.toml"
    path.write_text(dedent(text))
    return path


def test_policy_checks_and_refusal_messages(tmp_path):
    good = write_policy(tmp_path, """
        [[removed]]
        items = ["flag:--reasoning-parser=qwen3"]
        feature = "Qwen reasoning parser"
        reason = "not a DeepSeek model"
        """)
    assert removed_items(good) == [{
        "id": "flag:--reasoning-parser=qwen3", "feature": "Qwen reasoning parser", "reason": "not a DeepSeek model",
        "message": "Qwen reasoning parser was removed from this slimmed SGLang (not a DeepSeek model). To get it "
                   "back: record a scenario that uses it (slim record --scenario ...) and run slim apply."}]
    with pytest.raises(SlimError, match="not an item of the surface inventory"):
        load_policy(good, {"flag:--reasoning-parser"})
    with pytest.raises(SlimError, match="lacks scenario"):
        load_policy(write_policy(tmp_path, '[[kept]]\nitems = ["a"]\nreason = "r"\n'))
    with pytest.raises(SlimError, match="already listed"):
        load_policy(write_policy(tmp_path, '[[kept]]\nitems = ["a"]\nreason = "r"\nscenario = "s"\n'
                                           '[[removed]]\nitems = ["a"]\nreason = "r"\nfeature = "f"\n'))


def test_inventory_file_round_trip_and_errors(tmp_path, fixture_tree):
    inventory = derive_inventory(fixture_tree)
    write_inventory(inventory, tmp_path, "0.5.17")
    assert read_inventory(tmp_path, "0.5.17")["items"] == inventory["items"]
    with pytest.raises(SlimError, match="slim is pinned to 0.6.0"):
        read_inventory(tmp_path, "0.6.0")
    with pytest.raises(SlimError, match="slim surface --derive"):
        read_inventory(tmp_path / "empty", "0.5.17")


def test_a_written_launch_names_its_flags_and_values_not_defaults(items):
    launches = {"s1": ["x", "--tp", "2", "--attention-backend", "fa3"], "s2": ["x", "--mode=b", "--nope"]}
    assert launch_evidence(items, launches) == {
        "flag:--attention-backend": ["s1"], "flag:--attention-backend=fa3": ["s1"], "flag:--mode": ["s2"],
        "flag:--mode=b": ["s2"], "flag:--tp-size": ["s1"]}


def test_slim_surface_exits_with_the_unstatused_items(tmp_path, fixture_tree):
    write_inventory(derive_inventory(fixture_tree), tmp_path, up.load_pin().version)
    policy = write_policy(tmp_path, '[[kept]]\nitems = ["flag:--tp-size"]\nreason = "r"\nscenario = "s"\n')
    out = io.StringIO()
    with pytest.raises(SlimError, match=f"{len(EXPECTED_IDS) - 1} surface item"):
        run_surface(tmp_path, policy, False, False, False, 3, Console(file=out, width=200))
    assert "unstatused: entry:sglang.bench_serving" in out.getvalue()
    frame = load_surface(tmp_path, policy)
    assert list(frame.columns[:4]) == ["id", "kind", "name", "status"]
    assert frame.set_index("id").loc["flag:--tp-size", "status"] == "kept"


REAL = up.default_tree(up.load_pin())
needs_upstream = pytest.mark.skipif(not REAL.is_dir(), reason="upstream sglang not fetched")


@needs_upstream
def test_committed_inventory_is_what_upstream_derives():
    committed = read_inventory(REPO / "coverage_db", up.load_pin().version)
    fresh = json.loads(json.dumps(derive_inventory(REAL)))
    assert {key: committed[key] for key in fresh} == fresh, "run `slim surface --derive` and commit the inventory"
    counts = fresh["counts"]
    assert counts["route"] >= 60 and counts["flag"] >= 300 and counts["field"] >= 300
    assert counts["sampling_param"] >= 20 and counts["entry_point"] >= 10 and counts["console_script"] >= 1
    assert "route:POST /v1/chat/completions" in {item["id"] for item in fresh["items"]}


@needs_upstream
def test_every_policy_id_is_in_the_inventory():
    committed = read_inventory(REPO / "coverage_db", up.load_pin().version)
    assert load_policy(POLICY, {item["id"] for item in committed["items"]})


def test_every_kept_entry_names_a_scenario_that_would_record_it():
    """A kept item says where it would be recorded: a scenario of scenarios/, not a made-up name."""
    from scenarios.spec import scenario_names

    named = {entry.scenario for entry in load_policy(POLICY) if entry.section == "kept"}
    assert named and named <= set(scenario_names()), sorted(named - set(scenario_names()))


@needs_upstream
def test_every_unstatused_item_is_named_by_a_scenario_to_record():
    """What no recording or policy statuses has a written scenario whose launch names it (slim surface says
    which), so the way to a full surface is recording, not writing more scenarios."""
    frame = load_surface(REPO / "coverage_db")
    unstatused = frame[frame.status == "unstatused"]
    assert len(unstatused) and unstatused[unstatused.scenario == ""].id.tolist() == []


@needs_upstream
@pytest.mark.xfail(strict=True, reason="surface not yet fully recorded: issue 27")
def test_no_item_is_unstatused():
    frame = load_surface(REPO / "coverage_db")
    assert frame[frame.status == "unstatused"].id.tolist() == []


def test_the_fields_workload_names_the_fields_it_was_written_for():
    """dsv3_fp8_tp1_surface_fields is written, not yet recorded: as a recording that reached every handler
    it would record these ids (one per model or route it was written for), by the rules above."""
    from scenarios.spec import load_scenario

    items = read_inventory(REPO / "coverage_db", up.load_pin().version)["items"]
    requests = load_scenario("dsv3_fp8_tp1_surface_fields").requests
    handlers = [item["source"].split("::") + [1, 1] for item in items if item["kind"] == "route"]
    sent = [{"method": r.method, "path": r.path, "status": 200, "body": r.body} for r in requests]
    named = set(recording_evidence(items, [FakeRecording(["x"], outputs=sent, functions=handlers)]))
    assert {"field:GenerateReqInput.return_bytes", "field:CompletionRequest.return_routed_experts",
            "field:ChatCompletionRequest.ebnf", "field:ToolCall.index", "field:AnthropicComputerTool.display_number",
            "field:ThinkingBlock.signature", "field:SearchResultBlock.title", "field:ResponseTool.strict",
            "field:ResponsesRequest.reasoning", "field:ResponseReasoningParam.summary",
            "field:OllamaGenerateRequest.suffix", "field:ProfileReq.profile_stages",
            "field:UpdateWeightFromDiskReqInput.manifest", "field:AttachHiCacheStorageReqInput.hicache_write_policy",
            "route:HEAD /", "route:PUT /generate", "route:GET /open_session",
            "route:DELETE /hicache/storage-backend"} <= named


def test_the_extra_workload_names_the_fields_it_was_written_for():
    """dsv3_fp8_tp1_values2 (surface_extra, then serving) is written, not yet recorded: as a recording that
    reached every handler it would record the internal request fields, GET /stop_profile and /v1/score's
    embedding overrides, and the launch line's flag values, by the rules above."""
    from scenarios.spec import load_scenario

    items = read_inventory(REPO / "coverage_db", up.load_pin().version)["items"]
    scenario = load_scenario("dsv3_fp8_tp1_values2")
    handlers = [item["source"].split("::") + [1, 1] for item in items if item["kind"] == "route"]
    sent = [{"method": r.method, "path": r.path, "status": 200, "body": r.body} for r in scenario.requests]
    command = scenario.launch_command("python3", "/models/tiny", 30000)
    named = set(recording_evidence(items, [FakeRecording(command, outputs=sent, functions=handlers)]))
    ipc_models = ["AbortReq", "AttachHiCacheStorageReqInput", "CheckWeightsReqInput", "CloseSessionReqInput",
                  "ConfigureLoggingReq", "ContinueGenerationReqInput", "GenerateReqInput", "GetWeightsByNameReqInput",
                  "OpenSessionReqInput", "ParseFunctionCallReq", "PauseGenerationReqInput", "ProfileReq",
                  "ReleaseMemoryOccupationReqInput", "ResumeMemoryOccupationReqInput", "SeparateReasoningReqInput",
                  "SetInternalStateReq", "SlowDownReqInput", "UpdateWeightFromDiskReqInput",
                  "UpdateWeightVersionReqInput", "VertexGenerateReqInput"]
    assert {f"field:{model}.http_worker_ipc" for model in ipc_models} | {
        "field:ProfileReq.req_type", "field:GenerateReqInput.received_time", "route:GET /stop_profile",
        "field:ScoringRequest.embed_override_token_id", "field:ScoringRequest.query_embed_overrides",
        "field:ScoringRequest.item_embed_overrides", "field:ScoringRequest.return_pooled_hidden_states",
        "flag:--kv-cache-dtype=bfloat16", "flag:--expert-distribution-recorder-mode=per_pass",
        "flag:--tool-call-parser=auto", "flag:--remote-instance-weight-loader-backend=nccl"} <= named


def test_a_removed_flags_default_is_recorded_a_kept_flags_is_not():
    from slim.surface import defaults_unjudged
    from slim.surface.policy import Entry

    entries = [Entry("removed", ("flag:--lora-backend", "flag:--lora-backend=triton"), "LoRA", "LoRA"),
               Entry("kept", ("flag:--moe-a2a-backend",), "needs 2 GPUs", scenario="r1_fp8_ep2")]
    assert defaults_unjudged(entries) == {"flag:--moe-a2a-backend"}

