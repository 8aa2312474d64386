"""slim/verify.py's comparison across GPU models: logprob noise is no verdict, tokens still are."""

from types import SimpleNamespace

from slim.surface.policy import REFUSAL_MARK
from slim.verify import counts_as_pass, cross_gpu_note, mismatch_without_logprobs, outputs_mismatch, scenario_mismatch


def output(name: str, ids: list[int], logprob: float) -> dict:
    return {"name": name, "status": 200, "compare": True,
            "output": {"output_ids": ids, "meta_info": {"output_token_logprobs": [[logprob, ids[0], None]]}}}


def report(reference_gpu: str, host_gpu: str, without_logprobs: str | None) -> dict:
    return {"reference_gpus": [reference_gpu], "environment": {"gpus": [{"name": host_gpu}]},
            "requests_sent": 60, "mismatch_without_logprobs": without_logprobs}


def test_logprobs_are_left_out_but_tokens_are_not():
    reference = [output("greedy", [5, 6], -0.30)]
    assert mismatch_without_logprobs(reference, [output("greedy", [5, 6], -0.31)]) is None
    assert mismatch_without_logprobs(reference, [output("greedy", [5, 7], -0.30)]) is not None


def test_the_note_speaks_only_across_gpu_models():
    assert cross_gpu_note(report("NVIDIA H100", "NVIDIA H100", None)) == ""
    assert cross_gpu_note(report("NVIDIA H200", "NVIDIA H100", None)).endswith(
        "without logprobs every status, token and text matches")
    assert "output_ids" in cross_gpu_note(report("NVIDIA H200", "NVIDIA H100", "greedy: [output_ids][1]: 7 != 6"))


def test_a_batched_request_is_compared_without_logprobs_and_a_sequential_one_with_them():
    """A request of a concurrent group joins a running batch at a step timing decides: its logprobs
    move with the batch, its tokens must not."""
    reference = [output("grouped", [5, 6], -0.30), output("alone", [7], -0.30)]
    moved = [output("grouped", [5, 6], -1.20), output("alone", [7], -0.30)]
    assert outputs_mismatch(reference, moved, 0.05, frozenset({"grouped"})) is None
    assert outputs_mismatch(reference, moved, 0.05) is not None
    other_token = [output("grouped", [5, 9], -0.30), output("alone", [7], -0.30)]
    assert outputs_mismatch(reference, other_token, 0.05, frozenset({"grouped"})) is not None
    alone_moved = [output("grouped", [5, 6], -0.30), output("alone", [7], -1.20)]
    assert outputs_mismatch(reference, alone_moved, 0.05, frozenset({"grouped"})) is not None


def answer(name: str, status: int, body) -> dict:
    return {"name": name, "status": status, "compare": False, "output": body}


def test_a_front_door_refusal_counts_only_where_upstream_itself_failed():
    """Ollama's /api/chat answers 500 to every request on the pinned upstream; the slimmed tree
    refuses it with a 410 naming the removal. A refusal where upstream served (2xx) or refused
    (4xx) is a difference, as is a 4xx without the refusal's words."""
    refusal = {"error": {"code": 410, "message": f"Ollama's chat endpoint {REFUSAL_MARK} (upstream fails)."}}
    upstream_failed = [answer("ollama_chat", 500, "Internal Server Error")]
    assert outputs_mismatch(upstream_failed, [answer("ollama_chat", 410, refusal)]) is None
    assert outputs_mismatch(upstream_failed, [answer("ollama_chat", 410, {"error": "gone"})]) is not None
    assert outputs_mismatch([answer("ollama_chat", 200, {})], [answer("ollama_chat", 410, refusal)]) is not None
    assert outputs_mismatch([answer("ollama_chat", 400, {})], [answer("ollama_chat", 410, refusal)]) is not None


def request(name: str, compare: bool = True) -> SimpleNamespace:
    return SimpleNamespace(name=name, compare=compare, group=None)


def test_a_request_the_workload_no_longer_compares_is_judged_by_status_in_older_references():
    """A reference recorded while its workload still compared seeded sampling (which upstream itself
    does not reproduce) is judged by today's workload: status only for that request, tokens for the rest."""
    reference = [output("seeded", [5, 6], -0.30), output("greedy", [7], -0.30)]
    resampled = [output("seeded", [9, 2], -0.90), output("greedy", [7], -0.30)]
    today = SimpleNamespace(requests=[request("seeded", compare=False), request("greedy")], logprob_atol=0.01)
    assert scenario_mismatch(today, reference, resampled) is None
    back_then = SimpleNamespace(requests=[request("seeded"), request("greedy")], logprob_atol=0.01)
    assert scenario_mismatch(back_then, reference, resampled).startswith("seeded")
    other_greedy = [output("seeded", [9, 2], -0.90), output("greedy", [8], -0.30)]
    assert scenario_mismatch(today, reference, other_greedy).startswith("greedy")
    assert scenario_mismatch(today, reference, [dict(resampled[0], status=500), resampled[1]]) is not None


def verify_report(host_gpu: str, outputs: list[dict], mismatch: str | None) -> dict:
    return {"scenario": "dsv3_fp8_tp1", "passed": mismatch is None, "first_mismatch": mismatch, "start_failure": None,
            "environment": {"gpus": [{"name": host_gpu}]}, "outputs": outputs}


def test_a_logprob_only_difference_passes_only_against_another_gpu_models_reference():
    reference = [output("greedy", [5, 6], -0.30)]
    h100, h200 = {"gpus": [{"name": "NVIDIA H100"}]}, {"gpus": [{"name": "NVIDIA H200"}]}
    logprob_off = verify_report("NVIDIA H100", [output("greedy", [5, 6], -0.40)], "greedy: logprob -0.4 != -0.3")
    assert counts_as_pass(logprob_off, reference, h200)
    assert not counts_as_pass(logprob_off, reference, h100)  # same GPU model: a logprob is a verdict
    token_off = verify_report("NVIDIA H100", [output("greedy", [5, 7], -0.30)], "greedy: logprob and ids")
    assert not counts_as_pass(token_off, reference, h200)
    assert counts_as_pass(verify_report("NVIDIA H100", reference, None), None, None)
