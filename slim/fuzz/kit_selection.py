"""Which of upstream's server-contract test kits (`sglang/test/kits/*_kit.py`, `tool_call_test_runner.py`)
`slim verify --kits` runs against a scenario's server, and why each of the others is left out.

Chosen by hand, never by globbing: a kit judges the server only where it can pass on a tiny
random-weight DeepSeek model served by one scenario's flags. A kit whose answers need trained weights
in a few of its tests is still in (upstream fails those too: they become notes, not problems); a kit
that needs datasets, eval harnesses, its own server launch, a fixture's helper methods or a server
configuration no scenario serves is out. Order is run order: cheap contract checks first, the kits
that abort or pause everything last (a failed pause test leaves the server paused until `after`)."""

from __future__ import annotations

from dataclasses import dataclass

from slim.surface.status import flag_values


@dataclass(frozen=True)
class Kit:
    module: str  # under sglang.test.
    mixin: str  # the mixin class; for a module of plain test functions, the adapter's name
    why: str
    only: tuple[str, ...] = ()  # just these test methods (the others need what this harness lacks)
    needs_flag: str = ""  # without this server flag its tests are skipped
    flag_attrs: tuple[tuple[str, str], ...] = ()  # (attribute, flag): the attribute set to the flag's value
    setup: tuple[str, ...] = ()  # in setUpClass: "tokenizer" (the served checkpoint's), or a classmethod to call
    after: tuple[str, ...] = ()  # POST paths sent once its tests are done, whatever they did (restores the server)
    adapter: str = ""  # how the runner turns a function module into test methods

    @property
    def name(self) -> str:
        return f"{self.module.removeprefix('kits.')}.{self.mixin}"


SELECTED = (
    Kit("kits.basic_api_contract_kit", "BasicAPIContractMixin",
        "health, health_generate, server and model info, /v1/completions and /v1/chat/completions answer with "
        "their documented shape"),
    Kit("kits.matched_stop_kit", "MatchedStopMixin",
        "finish_reason and matched_stop for a stop string, a stop regex, EOS and length on both OpenAI routes "
        "(its EOS test expects Llama's EOS ids: upstream fails it too)"),
    Kit("kits.regex_constrained_kit", "RegexConstrainedMixin",
        "regex-constrained /generate with n=3: the grammar forces the text, so random weights must match too"),
    Kit("kits.ebnf_constrained_kit", "EBNFConstrainedMixin", "EBNF-constrained /generate with n=3 and n=5"),
    Kit("kits.json_constrained_kit", "JSONConstrainedMixin",
        "json_schema on /generate, an invalid schema, OpenAI response_format, 40 mixed constrained/free requests"),
    Kit("kits.basic_decode_correctness_kit", "BasicDecodeCorrectnessMixin",
        "greedy determinism and max_new_tokens=1 hold for any weights; its answer checks (Paris, 391) need "
        "trained ones and fail on upstream too"),
    Kit("kits.basic_scheduler_stress_kit", "BasicSchedulerStressMixin",
        "SSE streaming of /generate, 8 concurrent requests on a shared prefix, an ~8k-token prompt through "
        "chunked prefill"),
    Kit("kits.spec_server_kits", "SpecLogprobKit",
        "the logprob contract of /generate (logprob_start_len, decode vs prefill rescoring, top-k, ragged "
        "token_ids_logprob); none of its assertions needs speculative decoding"),
    Kit("kits.spec_server_kits", "SpecFeatureKit",
        "a 400-request radix-tree batch (upstream's radix_cache_server_kit) and response_format json_object; "
        "its test_request_abort needs the EAGLE fixture's send_request helpers",
        only=("test_radix_attention", "test_constrained_decoding")),
    Kit("kits.spec_server_kits", "SpecHiddenStatesKit", "return_hidden_states: one row per completion token",
        needs_flag="--enable-return-hidden-states"),
    Kit("kits.spec_server_kits", "SpecCorrectnessKit",
        "EOS and first-token-finish paths of speculative decoding; its accept-length thresholds need trained "
        "draft weights and fail on upstream too",
        needs_flag="--speculative-algorithm", setup=("tokenizer",)),
    Kit("kits.spec_server_kits", "SpecGrammarKit",
        "a JSON-schema answer under speculative decoding: nothing past the grammar's end, logprobs per kept token",
        needs_flag="--speculative-algorithm"),
    Kit("tool_call_test_runner", "ToolCalls",
        "tool calls through the OpenAI client, each test a function of `_TESTS`; these five force a tool call "
        "(tool_choice required or named), so they end; the others let a random model write until the context "
        "is full (no max_tokens)",
        only=("test_basic_format", "test_streaming", "test_required", "test_specific", "test_strict"),
        needs_flag="--tool-call-parser", adapter="tool_calls"),
    Kit("kits.reasoning_kit", "ReasoningTokenUsageMixin",
        "usage.reasoning_tokens with thinking on and off, streamed and not, and its exact count on /generate",
        needs_flag="--reasoning-parser", flag_attrs=(("reasoning_parser_name", "--reasoning-parser"),),
        setup=("init_reasoning_token_verifier",)),
    Kit("kits.reasoning_kit", "SeparateReasoningMixin",
        "separate_reasoning and stream_reasoning through the OpenAI client", needs_flag="--reasoning-parser"),
    Kit("kits.streaming_session_kit", "StreamingSessionKitMixin",
        "streaming sessions: KV inheritance, aborts mid-turn, concurrent logprob sessions, retract under stress",
        needs_flag="--enable-streaming-session", setup=("tokenizer",)),
    Kit("kits.abort_timeout_kit", "RunningTimeoutTwoWaveMixin",
        "two overlapping waves of 8 long decodes leave the server alive (no scenario sets "
        "SGLANG_REQ_RUNNING_TIMEOUT, so its 503 branch is not reached)"),
    Kit("kits.abort_timeout_kit", "AbortAllMixin", "/abort_request abort_all ends 32 running decodes as 'abort'"),
    Kit("kits.pause_generation_kit", "PauseResumeInPlaceMixin",
        "/pause_generation in_place holds 32 decodes, /continue_generation lets them finish",
        after=("/continue_generation",)),
)

# Modules (or module.Mixin) of the pinned tree's kits not run, and why.
LEFT_OUT = {
    "kits.abort_timeout_kit.WaitingTimeoutMixin":
        "needs SGLANG_REQ_WAITING_TIMEOUT and --max-running-requests 1; no scenario serves them, and without "
        "them no request waits long enough for its 503",
    "kits.streaming_session_kit.AbortLeakReproKitMixin":
        "sized for its fixture's --context-length 512 --page-size 256 server",
    "kits.spec_server_kits.SpecParityKit": "launches its own non-speculative reference server",
    "kits.spec_server_kits.SpecAccuracyKit": "GSM8K through run_eval: a dataset and a score threshold",
    "kits.spec_server_kits.SpecPerfKit": "GSM8K through run_eval: a dataset and a throughput threshold",
    "kits.spec_server_kits.SpecPenaltyKit": "calls the EAGLE fixture's run_decode helper",
    "kits.cache_hit_kit": "no mixin; its multi-turn cache-hit run samples prompts from a downloaded dataset",
    "kits.eval_accuracy_kit": "accuracy evals (GSM8K, MMLU, GPQA, AIME, HumanEval, MGSM) with trained-model thresholds",
    "kits.fwd_occupancy_kit": "a GPU-occupancy threshold under SGLANG_ENABLE_METRICS_DEVICE_TIMER",
    "kits.hellaswag_kit": "hellaswag accuracy through the frontend DSL",
    "kits.kl_divergence_kit": "KL divergence against reference logprobs of a dataset",
    "kits.lm_eval_kit": "lm-eval harness",
    "kits.mmmu_vlm_kit": "MMMU on a vision-language model",
    "kits.prefix_cache_branching_kit": "asserts Mamba-style chunked prefix caching (cache_chunk_size)",
    "kits.radix_cache_server_kit": "no mixin; its test runs through SpecFeatureKit.test_radix_attention",
    "kits.spec_decoding_kit": "batch-1 speed and accept-length thresholds",
    "kits.unified_radix_cache_kit": "GSM8K/MMLU accuracy and multi-turn KL on the fixture's dataset inputs",
    "kits.attention_unittest": "attention kernel unit tests, no server",
}


def flag_value(args: list[str], flag: str) -> str | None:
    """The value after `flag` in a launch command's args ("" for a bare switch); None when absent."""
    values = flag_values(args, [flag])
    return None if values is None else (values[0] if values else "")
