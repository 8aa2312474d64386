"""`slim verify --fuzz N --seed S [--kits]`: serve a scenario from pristine upstream, then from the slimmed
tree, on this GPU host; send both the same seeded requests (then, with --kits, run upstream's kit tests
against each server while it is up); compare; write coverage_db/fuzz/<scenario>-<seed>-<GPU>.json."""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.progress import Progress

from scenarios.hardware import detect_gpus, require
from scenarios.model_cache import materialize
from scenarios.server import free_port, started
from scenarios.spec import Scenario, load_scenario
from scenarios.tls import write_tls_files
from slim.apply import PYTHON_DIR, tree_digest
from slim.datafile import write_gzip_json
from slim.errors import SlimError
from slim.fuzz.compare import compare
from slim.fuzz.generate import RequestSpec, generate
from slim.fuzz.kits import KITS_DIR, TIMEOUT_S, KitsPlan, kits_on_server
from slim.fuzz.kits_compare import compare_kits
from slim.fuzz.run import fuzz_server
from slim.runtime import host_environment, probe
from slim.serve import HEALTH_TIMEOUT_S, server_env
from slim.surface import read_inventory
from slim.upstream import cache_root, load_pin
from slim.verify import diagnosis

FUZZ_SCHEMA = "slim-fuzz/1"
GZIP_OVER = 200_000  # bytes of compact JSON; a larger report is written gzipped
SIDES = ("upstream", "slim")
TOGETHER_STAGGER_S = 30  # --fuzz-together: the slim side starts this late (start-up memory probes rarely overlap)
STOP_S = 30  # the slim side's kits end this long before the fuzz budget does: the server stops, the report is written


def report_path(db: Path, scenario: str, seed: int | str, gpu_name: str) -> Path:
    return db / "fuzz" / f"{scenario}-{seed}-{gpu_name.replace(' ', '_')}.json"


def write_report(report: dict, path: Path) -> Path:
    """Compact JSON, or gzip JSON (path + .gz) past GZIP_OVER; the other form of the same name goes."""
    text = json.dumps(report, sort_keys=True, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    gz = path.with_name(path.name + ".gz")
    if len(text) > GZIP_OVER:
        written, stale = write_gzip_json(report, gz), path
    else:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        written, stale = tmp.replace(path), gz
    stale.unlink(missing_ok=True)
    return written


def request_rows(specs: list[RequestSpec], runs: dict[str, dict]) -> list[dict]:
    """One row per request: what was sent, and each side's status, class and seconds."""
    rows = []
    for spec in specs:
        row = {"id": spec.id, "batch": spec.batch, "route": f"{spec.method} {spec.path}", "fields": spec.fields[1:],
               "malformed": spec.malformed}
        for side, run in runs.items():
            if "rows" in run:
                row[side] = {k: v for k, v in run["rows"][spec.id].items() if k != "id"}
        rows.append(row)
    return rows


@dataclass(frozen=True)
class KitsSide:
    """--kits on one side: the plan, where the runner's output goes, when the side's kits must end."""

    plan: KitsPlan
    log: Path
    end_by: float | None  # time.monotonic(); None: no fuzz budget


def serve_and_fuzz(scenario: Scenario, site: Path, model: Path, specs: list[RequestSpec], log: Path,
                   deadline_s: float, health_timeout_s: float, kits: KitsSide | None = None,
                   show_progress: bool = True) -> dict:
    """Start the scenario's launch command with `site` first on PYTHONPATH, fuzz it, run the kits, stop it."""
    env = server_env([site], scenario.server_env)
    origin = Path(probe(env)["sglang_origin"]).resolve()
    if not origin.is_relative_to(site.resolve()):
        raise SlimError(f"sglang resolves to {origin}, not to {site}")
    port = free_port()
    tls = write_tls_files(log.with_suffix(".tls")) if scenario.tls else None
    try:
        with started(scenario.launch_command(sys.executable, str(model), port, tls), env, log, port,
                     health_timeout_s, tls) as server, Progress(disable=not show_progress) as progress:
            task = progress.add_task(f"{log.stem}: {len(specs)} requests", total=len(specs))
            run = fuzz_server(server.base_url, specs, deadline_s, lambda: progress.advance(task), server.ssl_context)
            run["server_alive"] = server.process.poll() is None
            run["healthy_after_s"] = server.healthy_after_s
            if kits:  # after the fuzz requests and their after-checks, on the same server
                progress.stop()
                run["kits"] = kits_on_server(kits.plan, server.base_url, server.process.pid, model, run["model"],
                                             scenario.server_args, tls.ca if tls else None, kits.log, kits.end_by)
                run["kits"]["server_alive_after"] = server.process.poll() is None
            return run
    except SlimError as error:  # never healthy: the report says why, and the diagnosis reads the log
        return {"start_failure": str(error)}


def fuzz_verify(scenario_name: str, n: int, seed: int, upstream_site: Path, tree: Path, db: Path, logs: Path,
                plan_source: Callable[[], dict] | None = None, deadline_s: float = 120,
                budget_s: float = 0, kits: KitsPlan | None = None, together: bool = False) -> tuple[Path, dict]:
    """Fuzz upstream then slim with the same seeded requests (n may be 0 with kits); a versioned report
    of both and the verdict. together (without kits): both sides at once on the one GPU.

    budget_s: seconds for both sides (0: no limit); slim is not started with less left than a deadline
    and a minute, or than 1.2 times what the upstream side took, whichever is less. Upstream's kits end
    by half the budget, slim's STOP_S before its end."""
    scenario = load_scenario(scenario_name)
    if scenario.hardware.nodes != 1 or not scenario.server_start:
        raise SlimError(f"{scenario.name} starts {scenario.hardware.nodes if scenario.server_start else 'no'} "
                        "server node(s); the fuzzer serves one-node scenarios")
    slim_site = (tree / PYTHON_DIR).resolve()
    for what, site in (("--upstream", upstream_site), ("--tree", slim_site)):
        if not (site / "sglang").is_dir():
            raise SlimError(f"{what}: {site} holds no sglang package")
    if kits and not (upstream_site / KITS_DIR).is_dir():  # found on GPU: every kit import then fails
        raise SlimError(f"--kits: {upstream_site} has no {KITS_DIR} (the runtime's upstream tarball leaves "
                        "sglang/test out; carry .carry/sglang-test.tar.xz from ci/build_gpu_runtime.sh)")
    gpus = detect_gpus()
    require(scenario, gpus)
    specs = generate(read_inventory(db, load_pin().version), seed, n) if n else []
    model = materialize(scenario.model, cache_root() / "models")
    fuzz_logs = logs / "fuzz"  # diagnosis() reads <scenario>.slim*.log there: this run's only
    started_at, runs, needed = time.monotonic(), {}, deadline_s + 60
    together = together and not kits  # the kits time their tests: one side after the other
    if together:
        runs = fuzz_sides_together(scenario, (upstream_site, slim_site), model, specs, fuzz_logs, deadline_s,
                                   min(HEALTH_TIMEOUT_S, budget_s - deadline_s - TOGETHER_STAGGER_S) if budget_s
                                   else HEALTH_TIMEOUT_S)
    for side, site in zip(SIDES, (upstream_site, slim_site), strict=True):
        if side in runs:
            continue
        side_start = time.monotonic()
        left = budget_s - (side_start - started_at) if budget_s else HEALTH_TIMEOUT_S + deadline_s * 2
        if left < needed:
            runs[side] = {"start_failure": f"not started: {left:.0f} s of the budget left, {needed:.0f} s needed"}
            continue
        runs[side] = serve_and_fuzz(scenario, site, model, specs, fresh_log(fuzz_logs, scenario.name, side),
                                    deadline_s, min(HEALTH_TIMEOUT_S, max(left - deadline_s, left / 2)),
                                    kits_side(kits, fuzz_logs, scenario.name, side, started_at, budget_s))
        # The other side serves the same flags and requests: what this one took is the better guess.
        needed = min(needed, 1.2 * (time.monotonic() - side_start))
    problems, notes = compare(specs, runs["upstream"], runs["slim"], deadline_s)
    kits_section = compare_kits(runs["upstream"].get("kits"), runs["slim"].get("kits")) if kits else None
    if kits_section:  # the kits' problems fail the run and get the same diagnosis
        problems, notes = problems + kits_section.pop("problems"), notes + kits_section.pop("notes")
    report = {
        "schema": FUZZ_SCHEMA,
        "scenario": scenario.name,
        "flags": scenario.server_args,
        "seed": seed,
        "n": n,
        "deadline_s": deadline_s,
        "together": together,
        "fuzzed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "tree_digest": tree_digest(tree),
        "environment": host_environment(gpus, probe(server_env([slim_site]))["versions"]),
        "sides": {side: {k: v for k, v in run.items() if k not in ("rows", "kits")} for side, run in runs.items()},
        "requests": request_rows(specs, runs),
        "problems": problems,
        "notes": notes,
        "diagnosis": diagnosis(fuzz_logs, scenario.name, plan_source) if problems else [],
        "passed": not problems,
        "specs_digest": _digest(specs),
        **({"kits": kits_section} if kits_section else {}),
    }
    return write_report(report, report_path(db, scenario.name, seed if n else "kits", gpus[0].name)), report


def fresh_log(fuzz_logs: Path, scenario: str, side: str) -> Path:
    """The side's server log, an earlier run's removed: diagnosis() must read this run's only."""
    log = fuzz_logs / f"{scenario}.{side}.log"
    log.unlink(missing_ok=True)
    return log


def fuzz_sides_together(scenario: Scenario, sites: tuple[Path, Path], model: Path, specs: list[RequestSpec],
                        fuzz_logs: Path, deadline_s: float, health_timeout_s: float) -> dict[str, dict]:
    """Upstream and slim at once, each its own server on the one GPU (a second fits beside the first,
    as verify's LANES=2 found): half the wall time. The verdict compares status classes, hangs and the
    servers' health, which sharing the GPU does not change; token-level comparison is verify's."""
    def one_side(k: int) -> tuple[str, dict]:
        side, site = SIDES[k], sites[k]
        time.sleep(k * TOGETHER_STAGGER_S)
        return side, serve_and_fuzz(scenario, site, model, specs, fresh_log(fuzz_logs, scenario.name, side),
                                    deadline_s, health_timeout_s,
                                    show_progress=False)  # one live display per console: none here

    with ThreadPoolExecutor(len(SIDES)) as pool:
        return dict(pool.map(one_side, range(len(SIDES))))


def kits_side(kits: KitsPlan | None, fuzz_logs: Path, scenario: str, side: str, started_at: float,
              budget_s: float) -> KitsSide | None:
    """--kits on one side; its log is not <scenario>.slim*.log: diagnosis() reads those as the server's."""
    if kits is None:
        return None
    log = fuzz_logs / f"{scenario}.kits-{side}.log"
    log.unlink(missing_ok=True)
    end_by = (started_at + (budget_s / 2 if side == "upstream" else budget_s - STOP_S)) if budget_s else None
    return KitsSide(kits, log, end_by)


def _digest(specs: list[RequestSpec]) -> str:
    """Names the exact request list (same seed and inventory -> same digest), bodies included."""
    return hashlib.sha256(json.dumps([asdict(s) for s in specs], sort_keys=True).encode()).hexdigest()[:16]


def fuzz_command(scenario: str, n: int, seed: int, upstream: Path | None, tree: Path, db: Path, logs: Path,
                 plan_source: Callable[[], dict], deadline_s: float, budget_s: float, console,
                 kits: bool = False, kits_timeout_s: float = TIMEOUT_S, kits_budget_s: float = 0,
                 together: bool = False) -> None:
    """`slim verify --fuzz N [--kits]`: run, print problems and diagnosis, fail with one line unless it passed."""
    from slim.upstream import resolve_tree

    site = resolve_tree(upstream)
    plan = KitsPlan(site, kits_timeout_s, kits_budget_s) if kits else None
    path, report = fuzz_verify(scenario, n, seed, site, tree, db, logs, plan_source, deadline_s, budget_s, plan,
                               together)
    for line in report["problems"] + report["diagnosis"]:
        console.print(line, highlight=False, soft_wrap=True)
    if not report["passed"]:
        what = f"fuzz seed {seed}" + (" with the kits" if kits else "") if n else "the kits"
        raise SlimError(f"{scenario}: {what} found {len(report['problems'])} problem(s) (report: {path})")
    what = [f"{n} fuzzed requests (seed {seed})"] if n else []
    if "kits" in report:
        verdicts = report["kits"]["verdicts"]
        counts = ", ".join(f"{count} {verdict}" for verdict, count in verdicts.items())
        what.append(f"{len(report['kits']['tests'])} kit tests ({counts})")
    console.print(f"{scenario}: {' and '.join(what)} answered like upstream (report: {path})")
