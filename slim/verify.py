"""`slim verify`: serve a scenario from the slimmed tree and compare with the recording's reference."""

from __future__ import annotations

import datetime
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

from scenarios.hardware import detect_gpus, require
from scenarios.model_cache import materialize, model_digest
from scenarios.spec import LOGPROB_ATOL, load_scenario
from scenarios.workload import first_mismatch, without_keys
from slim.apply import PYTHON_DIR, served_digest, tree_digest
from slim.companions import companion_mismatch, split_companions
from slim.diagnose import diagnose, parse_log
from slim.errors import SlimError
from slim.policy import load_policy
from slim.recording import Recording, load_recording, recording_paths
from slim.runtime import gpu_lanes, host_environment, probe
from slim.serve import serve_scenario, server_env
from slim.surface.policy import REFUSAL_MARK
from slim.upstream import cache_root, load_pin

VERIFY_SCHEMA = "slim-verify/2"  # 2: a failed start is a report too; diagnosis lines


def latest_recording(db: Path, scenario: str) -> Path:
    paths = [p for p in recording_paths(db) if p.parent.name == scenario]
    if not paths:
        raise SlimError(f"no recording of {scenario} in {db}: run `slim record --scenario {scenario}` first")
    return paths[-1]


def diagnosis(logs: Path, scenario: str, plan_source: Callable[[], dict] | None) -> list[str]:
    """One line per missing module/name/attribute/registry key in the server's logs, mapped to the plan."""
    text = "\n".join(p.read_text(errors="replace") for p in sorted(logs.glob(f"{scenario}.slim*.log")))
    if not parse_log(text):
        return []
    try:
        plan = plan_source() if plan_source else None
    except SlimError as error:
        plan, why = None, str(error)
    else:
        why = "no plan given"
    if plan is None:  # still name what was missing, only without the plan entry
        return [f"{m.error} (not mapped to the plan: {why}; pass --plan FILE)" for m in parse_log(text)]
    try:  # the policy names the [[off_surface]] entry behind a finding; it needs the surface inventory
        policy = load_policy()
    except SlimError:  # a device call that left coverage_db/surface/ behind: the findings still count
        policy = None
    return [finding.line(scenario) for finding in diagnose(text, plan, policy)]


def gpu_models(environment: dict) -> tuple[str, ...]:
    """The GPU model names of a recording's or a report's host, in device order."""
    return tuple(gpu["name"] for gpu in environment["gpus"])


def _is_logprobs(key: str) -> bool:
    return "logprob" in key


def without_response_noise(value):
    """`value` without what the clock or a random generator writes into an answer, not the tree: every
    `created` timestamp (/v1/models: when the server started) and the `id` of an OpenAI response
    object (a dict with `choices`: SageMaker's /invocations passes one through whole)."""
    if isinstance(value, dict):
        response = "choices" in value
        return {k: without_response_noise(v) for k, v in value.items()
                if k != "created" and not (response and k == "id")}
    if isinstance(value, list):
        return [without_response_noise(v) for v in value]
    return value


def refused_where_upstream_failed(reference: list[dict], outputs: list[dict]) -> list[str]:
    """Requests upstream answered with a server error (5xx) and the slimmed tree refused at its front
    door (a 4xx carrying REFUSAL_MARK): a feature removed because upstream can only fail on it
    (Ollama's /api/chat under the pinned transformers). Any other status difference still counts, a
    refusal where upstream answered 2xx or 4xx above all."""
    failed = {o["name"] for o in reference if o["status"] >= 500}
    return sorted(o["name"] for o in outputs if o["name"] in failed and 400 <= o["status"] < 500
                  and REFUSAL_MARK in json.dumps(o["output"]))


def outputs_mismatch(reference: list[dict], outputs: list[dict], logprob_atol: float = LOGPROB_ATOL,
                     batched: frozenset[str] = frozenset()) -> str | None:
    """The first difference of the requests (status, tokens, text, logprobs within logprob_atol), else
    the first companion that exited 0 on the reference run and not on this one. The logprobs of a
    `batched` request (one of a concurrent group: it joins a running batch at a step that timing
    decides) are left out: batch composition and the prefix cache's state move them (up to 0.94 in
    an echoed prompt, H100 2026-12-06, tokens and text identical); its tokens and text still count."""
    reference, outputs = (_loose(reference, batched), _loose(outputs, batched)) if batched else (reference, outputs)
    if refused := refused_where_upstream_failed(reference, outputs):
        reference = [o for o in reference if o["name"] not in refused]
        outputs = [o for o in outputs if o["name"] not in refused]
    reference, outputs = without_response_noise(reference), without_response_noise(outputs)
    reference_requests, reference_companions = split_companions(reference)
    requests, companions = split_companions(outputs)
    return (first_mismatch(reference_requests, requests, logprob_atol)
            or companion_mismatch(reference_companions, companions))


def scenario_mismatch(scenario, reference: list[dict], outputs: list[dict]) -> str | None:
    """outputs_mismatch with the scenario's tolerance, concurrent groups and today's `compare` flags:
    a request the workload has since marked `compare = false` (its output does not reproduce on
    upstream itself, e.g. seeded sampling) is judged by its status only, in references recorded before."""
    batched = frozenset(r.name for r in scenario.requests if r.group)
    status_only = {r.name for r in scenario.requests if not r.compare}
    reference = [dict(o, compare=False) if o["name"] in status_only else o for o in reference]
    return outputs_mismatch(reference, outputs, scenario.logprob_atol, batched)


def rejudged(report: dict, reference: list[dict]) -> bool:
    """Whether a stored report passes under today's comparison: the outputs a GPU served stay as
    they were written; only what counts as a difference may have been corrected since (a
    server-start timestamp compared as if it were output, 2026-12-06)."""
    if report["passed"] or report["start_failure"] is not None:
        return report["passed"]
    return scenario_mismatch(load_scenario(report["scenario"]), reference, report["outputs"]) is None


def counts_as_pass(report: dict, reference: list[dict] | None, reference_environment: dict | None) -> bool:
    """Whether a report is a pass of its tree: as the GPU wrote it, under today's comparison of its
    stored outputs, or failed only in logprobs against a reference from another GPU model (an H100
    run of an H200 reference: statuses, tokens and text must all still match)."""
    if reference is None:
        return report["passed"]
    if rejudged(report, reference):
        return True
    return (report["start_failure"] is None and reference_environment is not None
            and gpu_models(report["environment"]) != gpu_models(reference_environment)
            and "logprob" in (report["first_mismatch"] or "")
            and mismatch_without_logprobs(reference, report["outputs"]) is None)


def report_passes(report: dict, folders: list[Path]) -> bool:
    """counts_as_pass against the report's recording, read from the first of `folders` that holds it
    (a recording or just its reference part); the GPU's own verdict where none does."""
    if report["passed"]:
        return True
    path = next((p for f in folders if (p := f / f"{report.get('recording')}.json.gz").is_file()), None)
    if path is None:
        return False
    with gzip.open(path, "rt") as handle:
        reference = json.load(handle)
    return counts_as_pass(report, reference["outputs"], reference["environment"])


def _loose(outputs: list[dict], batched: frozenset[str]) -> list[dict]:
    return [without_keys(o, _is_logprobs) if o["name"] in batched else o for o in outputs]


def mismatch_without_logprobs(reference: list[dict], outputs: list[dict]) -> str | None:
    """The first difference once every logprob is left out. Across GPU models (an H100 against an
    H200 reference) greedy tokens and text agree but logprobs are not bit-identical, and may
    differ beyond the tolerance; statuses, tokens and text must still match exactly."""
    return outputs_mismatch(without_keys(reference, _is_logprobs), without_keys(outputs, _is_logprobs))


def cross_gpu_note(report: dict) -> str:
    """For a failed report whose reference came from another GPU model: what differs without logprobs."""
    if report["reference_gpus"] == list(gpu_models(report["environment"])) or not report["requests_sent"]:
        return ""
    rest = report["mismatch_without_logprobs"] or "every status, token and text matches"
    return f"; the reference is from {', '.join(report['reference_gpus'])}, and without logprobs {rest}"


def verify(scenario_name: str, db: Path, tree: Path, logs: Path,
           plan_source: Callable[[], dict] | None = None) -> tuple[Path, dict]:
    """Serve from `tree` (first on PYTHONPATH), compare to the latest recording, write a report beside it.

    plan_source: called only on failure, for the plan the missing symbols are mapped back to."""
    recording, report = serve_and_compare(scenario_name, db, (tree / PYTHON_DIR).resolve(), logs, "slim", {
        "tree_digest": tree_digest(tree), "served_digest": served_digest(tree)}, plan_source)
    return write_report(recording.path.with_name(f"{recording.name}.verify.json"), report), report


def write_report(path: Path, report: dict) -> Path:
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return path


def report_stamp(report: dict) -> str:
    """The report's time to the minute, for file names: 20261207T1642."""
    return report["verified_at"][:16].replace("-", "").replace(":", "")


# The side of a report served from pristine upstream, untraced: its served_digest says so, and no
# verify of a slimmed tree counts it (tests/test_committed.py).
UPSTREAM_SIDE = "upstream_untraced"


def verify_upstream(scenario_name: str, db: Path, site: Path, logs: Path) -> tuple[Path, dict]:
    """Serve from pristine upstream (`site` holds sglang/; untraced) and compare to the latest recording:
    whether a difference the slimmed tree shows is upstream's own on this host today (the reference
    was recorded traced, on another day or host), or the tree's. The report goes under DB/benchmarks/."""
    recording, report = serve_and_compare(scenario_name, db, site.resolve(), logs, UPSTREAM_SIDE, {
        "tree_digest": tree_digest(site / "sglang"), "served_digest": f"{UPSTREAM_SIDE} {load_pin().version}"})
    path = db / "benchmarks" / f"{scenario_name}-upstream-{report_stamp(report)}.verify.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_report(path, report), report


def serve_and_compare(scenario_name: str, db: Path, python_dir: Path, logs: Path, side: str, digests: dict,
                      plan_source: Callable[[], dict] | None = None) -> tuple[Recording, dict]:
    """One server of the scenario with `python_dir` first on PYTHONPATH, its workload compared with the
    latest recording's reference: the recording and the report (not yet written)."""
    scenario = load_scenario(scenario_name)
    gpus = detect_gpus()
    require(scenario, gpus)
    recording = load_recording(latest_recording(db, scenario.name), load_pin().version)
    env = server_env([python_dir])
    facts = probe(env)
    if not Path(facts["sglang_origin"]).resolve().is_relative_to(python_dir):
        raise SlimError(f"sglang resolves to {facts['sglang_origin']}, not to the {side} tree {python_dir}")
    model = materialize(scenario.model, cache_root() / "models")
    recorded_model = recording.data.get("model", {}).get("sha256")
    if recorded_model and model_digest(model) != recorded_model:
        raise SlimError(f"{model} differs from the weights {recording.name} was recorded with; "
                        "the reference does not apply (re-record the scenario)")
    try:
        run, start_failure = serve_scenario(scenario, env, logs / f"{scenario.name}.{side}.log", model), None
    except SlimError as error:  # not healthy: the report (and its diagnosis) is what explains it
        run, start_failure = None, str(error)
    mismatch = start_failure or scenario_mismatch(scenario, recording.outputs, run.outputs)
    environment = host_environment(gpus, facts["versions"])
    reference_gpus = gpu_models(recording.data["environment"])
    cross_gpu = gpu_models(environment) != reference_gpus
    report = {
        "schema": VERIFY_SCHEMA,
        "scenario": scenario.name,
        "recording": recording.name,
        "verified_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **digests,
        "passed": mismatch is None,
        "first_mismatch": mismatch,
        "logprob_atol": scenario.logprob_atol,
        "start_failure": start_failure,
        "diagnosis": [] if mismatch is None or side != "slim" else diagnosis(logs, scenario.name, plan_source),
        "requests_compared": sum(o["compare"] for o in recording.outputs),
        "requests_sent": len(run.outputs) if run else 0,
        "refused_where_upstream_failed": refused_where_upstream_failed(recording.outputs, run.outputs) if run else [],
        "command": run.command if run else None,
        "environment": environment,
        # set when the reference came from another GPU model: then logprob noise is no verdict
        "mismatch_without_logprobs": (mismatch_without_logprobs(recording.outputs, run.outputs)
                                      if cross_gpu and run else None),
        "reference_gpus": list(reference_gpus),
        # which third-party runtime served it (ci/bundle_runtime.sh names it: the full deps or a bundle)
        "runtime": os.environ.get("SLIM_RUNTIME"),
        # verify servers that shared this GPU at once (ci/gpu_session.sh LANES); the KV pool is then
        # sized from less free memory, which no compared output depends on
        "lanes": gpu_lanes(),
        "healthy_after_s": {"upstream": recording.data.get("healthy_after_s"),
                            side: run.healthy_after_s if run else None},
        "outputs": run.outputs if run else [],
    }
    return recording, report
