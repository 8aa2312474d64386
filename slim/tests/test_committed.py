"""Checks on the real data: committed recordings, GPU verify reports, the committed slimmed tree.

They need the pinned upstream in the cache (`slim fetch`, done by ci/setup.sh) where they read it.
"""

import json
import tomllib

import pytest

from scenarios.spec import SCENARIO_DIR, load_scenario, scenario_names
from slim.apply import served_digest, tree_digest
from slim.bundle import MANIFEST_SCHEMA
from slim.datafile import read_gzip_json
from slim.front_door import FRONT_DOOR, entry_doors
from slim.paths import DB, OUT
from slim.plan import make_function_plan, package_files
from slim.recording import PENDING, UNVERIFIED, load_all, load_pending, load_waiting
from slim.upstream import default_tree, load_pin, verify_tree
from slim.verify import UPSTREAM_SIDE, counts_as_pass


@pytest.fixture(scope="module")
def recordings():
    return load_all(DB, load_pin().version)


@pytest.fixture(scope="module")
def upstream_plan(recordings):
    tree = default_tree(load_pin())
    if not tree.is_dir():
        pytest.skip("upstream not fetched: run `slim fetch` (ci/setup.sh does)")
    tree = verify_tree(tree)
    return make_function_plan(tree, package_files(tree), recordings)


REFUSAL_WORKLOADS = {"surface_requests", "surface_admin", "auth"}  # bad input on purpose


def test_recordings_are_real_gpu_runs(recordings):
    for recording in recordings:
        env = recording.data["environment"]
        assert env["gpus"] and env["gpus"][0]["compute_capability"] >= 9.0
        assert env["versions"]["sglang"] == "0.5.17"
        assert recording.data["command"][1:3] == ["-m", "sglang.launch_server"]
        assert len(recording.data["processes"]) >= 3  # main, scheduler, detokenizer at least
        # 4xx only where the input is bad; an uncompared probe may meet an upstream fault (0.5.17's
        # Ollama /api/chat answers 500), which the slimmed tree is not asked to repeat
        assert all(o["status"] < 500 for o in recording.outputs if o["compare"])
        # A compared answer is a 200, or a 4xx that a workload sends on purpose (a malformed body, an
        # invalid regex, a missing API key): the slimmed tree must refuse it with the same answer.
        workload = tomllib.loads((SCENARIO_DIR / f"{recording.scenario}.toml").read_text()).get("workload", [])
        refusing = bool(({workload} if isinstance(workload, str) else set(workload)) & REFUSAL_WORKLOADS)
        assert all(o["status"] == 200 or (400 <= o["status"] < 500 and refusing)
                   for o in recording.outputs if o["compare"])


DYNAMO_RESUME = "torch_dynamo_resume_in_"  # torch.compile's continuations: code objects with no def line


def test_recordings_hold_real_upstream_functions_and_one_process_tree(recordings):
    """Content, not just fields: every function a recording ran is a def or class (or its decorator)
    at that line of the pinned upstream source, and the server's processes form one tree under the
    launch command."""
    tree = default_tree(load_pin())
    if not tree.is_dir():
        pytest.skip("upstream not fetched: run `slim fetch` (ci/setup.sh does)")
    sources: dict[str, list[str]] = {}
    for recording in recordings:
        for file, qualname, line, *_ in recording.data["functions"]:
            if file not in sources:
                sources[file] = (tree / file).read_text(errors="replace").splitlines()
            if "<" in qualname or qualname.rsplit(".", 1)[-1].startswith(DYNAMO_RESUME):
                continue
            text = sources[file][line - 1].lstrip()
            assert text.startswith(("def ", "async def ", "class ", "@")), (recording.name, file, qualname, line)
        pids = {p["pid"] for p in recording.data["processes"]}
        roots = [p for p in recording.data["processes"] if p["ppid"] not in pids]
        assert len(roots) == 1 and roots[0]["argv"][0].endswith("sglang/launch_server.py"), recording.name


@pytest.mark.parametrize("folder", [PENDING, UNVERIFIED])
def test_waiting_recordings_are_gpu_runs_whose_scenario_says_why_they_wait(folder):
    """coverage_db/pending/ and coverage_db/unverified/ hold runs no plan reads yet: they load like
    committed ones (pinned version, schema), sit under their own scenario, and exactly their
    scenarios' statuses start with the folder's name (none once every such run has been promoted)."""
    runs = load_waiting(DB, folder, load_pin().version)
    for recording in runs:
        assert recording.path.parent.name == recording.scenario
        assert recording.data["environment"]["gpus"]
    waiting = {recording.scenario for recording in runs}
    for name in scenario_names():
        assert (load_scenario(name).status or "").startswith(folder) == (name in waiting), name


def test_pending_runs_carry_a_verify_of_the_committed_tree():
    """A pending run is an unseen scenario checked on the GPU: beside it, the report of the
    committed tree serving it, and its scenario's status says how that went."""
    pending = load_pending(DB, load_pin().version)
    if not pending:  # a visible skip, not a loop over nothing that passes
        pytest.skip("no pending recording in coverage_db/pending/")
    digest = tree_digest(OUT)
    for recording in pending:
        report = json.loads(recording.path.with_name(recording.name + ".verify.json").read_text())
        assert report["tree_digest"] == digest and report["scenario"] == recording.scenario
        served = "the committed tree, planned without it, served it token-identical"
        assert (served in load_scenario(recording.scenario).status) == report["passed"], recording.scenario


def test_every_scenario_has_greedy_reference_tokens(recordings):
    for recording in recordings:
        greedy = [o for o in recording.outputs if o["path"] == "/generate" and o["compare"]]
        assert greedy and all(o["output"] for o in greedy)


def test_committed_tree_is_the_one_verified_on_gpu(recordings):
    """The tree in git is byte-for-byte a tree that served the reference outputs on a GPU.

    Two exceptions, checked rather than trusted: a reference recorded on another GPU model (the
    lent host is an H100 or, when none is free, an H200) may differ from the verify run in
    logprob noise beyond the tolerance; then every status, token and text must still match. And a
    scenario whose file says `awaiting_verify` (why the GPU budget did not reach it) may lack a
    report on this tree if an earlier tree passed it; the key must go once this tree is verified.
    A report on a tree whose python/ is byte-identical (`served_digest`) is a report on this tree:
    the plan's description beside it (REMOVED.md, PLAN.json.gz) changes with each new input.
    Whether a report passes is slim/verify.py `counts_as_pass`: as written, rejudged, or across GPUs."""
    digest, served = tree_digest(OUT), served_digest(OUT)
    reports = [r for p in DB.glob("*/*.verify.json")  # an upstream run (verify_upstream) verifies no tree
               if not (r := json.loads(p.read_text())).get("served_digest", "").startswith(UPSTREAM_SIDE)]
    by_scenario = {r.scenario: r for r in recordings}
    # the same tree, or one whose python/ (all a server imports) is byte-identical to this one's; a
    # waiting run's report (its scenario no plan input yet) says nothing about the inputs' verify
    on_tree = [r for r in reports if (r["tree_digest"] == digest or r.get("served_digest") == served)
               and r["scenario"] in by_scenario]
    by_name = {r.name: r for r in recordings}

    def passes(report: dict) -> bool:  # slim/verify.py counts_as_pass: as GPU-written, rejudged, or across GPUs
        reference = by_name.get(report["recording"])
        return counts_as_pass(report, reference and reference.outputs, reference and reference.data["environment"])

    on_this_tree = {r["scenario"] for r in on_tree if passes(r)}
    awaiting = {name for name in by_scenario if load_scenario(name).awaiting_verify}
    assert not awaiting & on_this_tree, "verified on this tree: drop its awaiting_verify"
    passed_before = {r["scenario"] for r in reports if passes(r)}
    assert awaiting <= passed_before, "awaiting_verify needs a passing verify of an earlier tree"
    assert on_this_tree | awaiting == set(by_scenario)


def test_committed_bundle_manifest_is_of_the_committed_tree():
    """The bundle the GPU verified packed exactly the committed tree; its summary is of that manifest."""
    summary = json.loads((DB / "bundle" / "manifest-summary.json").read_text())
    manifest = read_gzip_json(DB / "bundle" / "manifest.json.gz", "bundle manifest", "gzip JSON",
                              MANIFEST_SCHEMA, ("tree_digest", "totals"))
    assert summary["tree_digest"] == manifest["tree_digest"] == tree_digest(OUT)
    assert summary["totals"] == manifest["totals"]


def test_plan_on_real_upstream_keeps_the_serving_path(upstream_plan):
    kept = set(upstream_plan.kept)
    for path in ("sglang/launch_server.py", "sglang/srt/entrypoints/http_server.py",
                 "sglang/srt/models/deepseek_v2.py", "sglang/srt/managers/scheduler.py",
                 "sglang/srt/layers/quantization/fp8.py"):
        assert path in kept
    removed = {d.path for d in upstream_plan.removed}
    assert "sglang/bench_serving.py" in kept and "sglang/benchmark/serving.py" in kept  # companion entry points
    assert "sglang/srt/models/qwen2_vl.py" in removed and "sglang/srt/models/llama.py" in removed
    assert not any(p.startswith("sglang/multimodal_gen/") for p in kept)
    assert "sglang/test/send_one.py" in kept and "sglang/test/run_eval.py" in kept  # operator tools
    assert not any(p.startswith("sglang/test/scripted_runtime/") for p in kept)  # behind a refused switch


def test_plan_size_matches_committed_tree(upstream_plan):
    """Every kept file, and the files slim writes itself: the front door of what it removed, and a
    door module in place of each removed entry point whose package stays."""
    committed = {rel for p in (OUT / "python").rglob("*")  # the pruned pyproject beside sglang/ aside
                 if p.is_file() and (rel := p.relative_to(OUT / "python").as_posix()) != "pyproject.toml"}
    assert upstream_plan.policy.front_door
    doors = entry_doors(list(upstream_plan.policy.front_door), set(upstream_plan.kept))
    assert doors and not set(doors) & set(upstream_plan.kept)
    assert committed == set(upstream_plan.kept) | {FRONT_DOOR} | set(doors)
