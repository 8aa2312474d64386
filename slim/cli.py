"""The `slim` command line: fetch, scenarios, record, plan, apply, check, verify."""

from __future__ import annotations

import gc
import json
import shlex
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from slim.errors import SlimError
from slim.paths import DB, OUT, REPO

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Slim SGLang down to what DeepSeek serving runs.")
console = Console()

UpstreamOpt = Annotated[Path | None, typer.Option(help="A local unpacked sglang wheel instead of the cached download.")]
DbOpt = Annotated[Path, typer.Option(help="The coverage database folder.")]
LogsOpt = Annotated[Path, typer.Option(help="Where server logs go.")]


@app.command()
def fetch(wheel: Annotated[Path | None, typer.Option(help="Use this local wheel file instead of PyPI.")] = None,
          upstream: UpstreamOpt = None) -> None:
    """Get the pinned upstream sglang wheel (sha256-checked) and unpack it into the cache."""
    from slim import upstream as up

    tree = up.verify_tree(upstream) if upstream else up.fetch(wheel=wheel)
    console.print(f"upstream sglang {up.load_pin().version} verified at {tree}")


@app.command()
def scenarios(db: DbOpt = DB,
              plan: Annotated[str | None, typer.Option(help="Print this scenario's launch plan (dry run).")] = None,
              wide: Annotated[bool, typer.Option("--wide", help="Every column, and each scenario's note.")] = False,
              as_json: Annotated[bool, typer.Option("--json", help="Every scenario's row and note as JSON.")] = False,
              ) -> None:
    """List the scenarios: what each needs, its state, and where/when it was last recorded."""
    from scenarios.spec import load_scenario, scenario_names
    from scenarios.tls import scheme
    from slim.recording import PENDING, UNVERIFIED, last_recorded

    if plan is not None:
        scenario = load_scenario(plan)
        ports = [30000 + 10 * rank for rank in range(scenario.hardware.nodes)]
        launches = scenario.launch_plan("python3", "<model>", ports, dist_port=30100) if scenario.server_start else []
        for launch in launches:
            env = " ".join(f"{k}={v}" for k, v in {**scenario.server_env, **launch.env}.items())
            console.print(f"{env} {' '.join(launch.argv)}", highlight=False, soft_wrap=True)
        for companion in scenario.companions:  # after the workload (with_server) or once the server is down
            env = " ".join(f"{k}={v}" for k, v in {**scenario.server_env, **companion.env}.items())
            port = str(ports[0]) if companion.when == "with_server" else "<free-port>"
            values = {"base_url": f"{scheme(scenario.tls)}://127.0.0.1:{port}", "model_path": "<model>", "port": port}
            console.print(f"[{companion.when}] {env} {shlex.join(companion.command('python3', values))}",
                          markup=False, highlight=False, soft_wrap=True)
        return
    recorded = last_recorded(db)
    pending, unverified = (last_recorded(db / folder) if (db / folder).is_dir() else {}
                           for folder in (PENDING, UNVERIFIED))
    rows = [scenario_row(name, load_scenario(name), recorded, pending, unverified) for name in scenario_names()]
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    columns = ["scenario", "GPUs", "nodes", "sm", "last recorded", "pending recording", "state"] if wide \
        else ["scenario", "GPUs", "state"]
    table = Table(*columns)
    table.columns[0].no_wrap = True  # the one column a user needs whole
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    console.print(table)
    for row in rows if wide else []:
        if row["note"]:
            console.print(f"- {row['scenario']}: {row['note']}", highlight=False)
    if not wide:
        console.print("each scenario's note and recordings: slim scenarios --wide (or --json)", highlight=False)


def scenario_row(name: str, s, recorded: dict[str, str], pending: dict[str, str],
                 unverified: dict[str, str]) -> dict[str, str]:
    """One scenario's row: its needs, its last (and waiting) recording, its state in a few words."""
    state = ("awaiting verify" if name in recorded and s.awaiting_verify else "recorded" if name in recorded
             else "pending" if name in pending else "unverified" if name in unverified
             else "not recorded (note)" if s.status else "not recorded yet")
    return {"scenario": name, "GPUs": str(s.hardware.gpus), "nodes": str(s.hardware.nodes),
            "sm": f"{round(s.hardware.min_compute_capability * 10)}+", "last recorded": recorded.get(name, "never"),
            "pending recording": pending.get(name, unverified.get(name, "-")), "state": state,
            "note": s.status or s.awaiting_verify or ""}


@app.command()
def record(scenario: Annotated[str, typer.Option(help="Scenario name (see `slim scenarios`).")],
           db: DbOpt = DB, logs: LogsOpt = Path("logs"),
           model_path: Annotated[Path | None,
                                 typer.Option(help="Serve these weights instead of the scenario's tiny model.")] = None,
           ) -> None:
    """Run a scenario on upstream sglang on this GPU host with the tracer on; write a recording."""
    from slim.record import record as run_record

    path = run_record(scenario, db, logs, model_path)
    console.print(f"recorded {scenario} -> {path}")


@contextmanager
def _without_cyclic_gc():
    """The plan makes millions of small objects that live until it is done (recording rows, module
    indexes) and form no garbage cycles: the cyclic collector's passes over them cost ~1.8 s of a
    ~10 s `slim apply` and free nothing (same peak memory without them); refcounts still free them.
    Afterwards they are frozen out of its passes, so that turning it back on costs nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _plan(upstream: Path | None, db: Path):
    from slim import upstream as up
    from slim.plan import make_function_plan, package_files
    from slim.policy import load_policy
    from slim.recording import load_all

    with _without_cyclic_gc():
        tree = up.resolve_tree(upstream)
        pin = up.load_pin()
        recordings = load_all(db, pin.version)
        return tree, pin, recordings, make_function_plan(tree, package_files(tree), recordings, load_policy())


@app.command()
def plan(upstream: UpstreamOpt = None, db: DbOpt = DB,
         json_out: Annotated[Path | None,
                             typer.Option("--json", help="Write the whole plan here as JSON.")] = None) -> None:
    """Compute the plan (files, then functions/methods/classes, with reasons); write nothing else."""
    from slim.apply import count_lines, policy_lines

    tree, _, recordings, the_plan = _plan(upstream, db)
    table = Table("what", "action", "count", "upstream lines", title=f"plan from {len(recordings)} recording(s)")
    for keep in (True, False):
        files = [d for d in the_plan.files if d.keep == keep and d.path.endswith(".py")]
        table.add_row(".py files", "keep" if keep else "delete", str(len(files)),
                      str(sum(count_lines(tree / d.path) for d in files)))
    summary: dict[tuple[str, str], list[int]] = {}
    for d in the_plan.defs:
        reason = d.reason.kind.group
        entry = summary.setdefault((d.action, reason), [0, 0])
        entry[0] += 1
        entry[1] += d.lines
    for (action, reason), (n, lines) in sorted(summary.items()):
        table.add_row(f"defs: {reason}", action, str(n), str(lines))
    table.add_row("kept by policy.toml", "keep", str(len(the_plan.policy.keeps)), str(policy_lines(the_plan, tree)))
    console.print(table)
    if json_out:
        json_out.write_text(the_plan.to_json() + "\n")
        console.print(f"plan written to {json_out}")


@app.command()
def apply(upstream: UpstreamOpt = None, db: DbOpt = DB,
          out: Annotated[Path, typer.Option(help="Where the slimmed tree goes.")] = OUT,
          check: Annotated[bool, typer.Option("--check", help="Fail if --out differs; write nothing.")] = False,
          keep: Annotated[str | None, typer.Option(help="First add FILE[::QUALNAME] to slim/policy.toml.")] = None,
          reason: Annotated[str, typer.Option(help="Why --keep is needed (required with --keep).")] = "",
          scenario: Annotated[str, typer.Option(help="The scenario that would record --keep's code.")] = "") -> None:
    """Write the slimmed tree from the recordings (or check the committed one)."""
    from slim.apply import apply_plan

    if keep:  # before planning, so this apply already keeps it
        from slim import upstream as up
        from slim.policy import add_keep

        if check:
            raise SlimError("--keep changes slim/policy.toml; it cannot go with --check")
        add_keep(keep, reason, scenario, up.resolve_tree(upstream))
        console.print(f"kept {keep} in slim/policy.toml ({reason})", highlight=False)
    tree, pin, recordings, plan = _plan(upstream, db)
    diffs = apply_plan(plan, tree, pin, out, check=check)
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
        raise SlimError(f"{out} is not what `slim apply` writes ({len(diffs)} differences): {shown}")
    verb = "matches" if check else "written to"
    console.print(f"slimmed tree {verb} {out}: kept {len(plan.kept)} files, removed {len(plan.removed)} "
                  f"(from {len(recordings)} recording(s))")


@app.command()
def check(tree: Annotated[Path, typer.Option(help="The slimmed tree (holds python/sglang).")] = OUT,
          upstream: UpstreamOpt = None) -> None:
    """Static integrity of a slimmed tree: compiles, imports resolve, no undefined or deleted names."""
    from slim import upstream as up
    from slim.check import check_tree
    from slim.flag_guards import flag_dests
    from slim.surface import read_inventory, removed_items

    inventory = read_inventory(DB, up.load_pin().version)["items"]
    report = check_tree(tree, up.resolve_tree(upstream),
                        flags=(flag_dests(inventory), {row["id"] for row in removed_items()},
                               {item["id"] for item in inventory if item["kind"] == "flag_value"}))
    for what, n in sorted(report.notes.items()):
        console.print(f"allowed: {n} {what}", highlight=False)
    if report.errors:
        for line in report.errors[:50]:
            console.print(line, highlight=False, soft_wrap=True)
        raise SlimError(f"{tree}: {len(report.errors)} integrity error(s)")
    console.print(f"{tree}: compiles, every import resolves, no undefined or deleted names")


@app.command()
def verify(scenario: Annotated[str, typer.Option(help="Scenario name.")], db: DbOpt = DB,
           tree: Annotated[Path, typer.Option(help="The slimmed tree (holds python/sglang).")] = OUT,
           logs: LogsOpt = Path("logs"), upstream: UpstreamOpt = None,
           plan: Annotated[Path | None, typer.Option(help="`slim plan --json` output to map missing symbols to "
                                                          "(default: computed from --db and upstream).")] = None,
           fuzz: Annotated[int, typer.Option(help="Send N seeded random requests to upstream (--upstream), then to "
                                                  "--tree; compare (report in DB/fuzz).")] = 0,
           seed: Annotated[int, typer.Option(help="The --fuzz seed.")] = 0,
           fuzz_deadline_s: Annotated[float, typer.Option(help="--fuzz: slower than this is a hang.")] = 120,
           fuzz_budget_s: Annotated[float, typer.Option(help="--fuzz: seconds for both sides (0: none).")] = 0,
           kits: Annotated[bool, typer.Option("--kits", help="With --fuzz N (0 too): also run upstream's kit tests "
                                                         "against each server (slim/fuzz/kit_selection.py).")] = False,
           kits_timeout_s: Annotated[float, typer.Option(help="--kits: a test slower than this is an error.")] = 90,
           kits_budget_s: Annotated[float, typer.Option(help="--kits: seconds per side (0: what the fuzz budget "
                                                             "leaves).")] = 0,
           fuzz_together: Annotated[bool, typer.Option("--fuzz-together", help="--fuzz without --kits: serve "
                                                       "upstream and the tree at once on this GPU.")] = False,
           on_upstream: Annotated[bool, typer.Option("--on-upstream", help="Serve pristine upstream (--upstream), "
                                                     "untraced, instead of the tree: is a difference upstream's "
                                                     "own on this host? (report in DB/benchmarks)")] = False,
           ) -> None:
    """Serve the scenario from the slimmed tree on this GPU host; compare with the recorded reference."""
    from slim.apply import PLAN_FILE
    from slim.diagnose import compute_plan, load_plan_json
    from slim.verify import cross_gpu_note
    from slim.verify import verify as run_verify

    # The plan that made the tree maps a failure to what deleted it: --plan, else the tree's own
    # PLAN.json.gz, else the policy's plan computed from upstream now.
    plan = plan or (tree / PLAN_FILE if (tree / PLAN_FILE).is_file() else None)
    plan_source = (lambda: load_plan_json(plan)) if plan else (lambda: compute_plan(upstream, db))
    if fuzz or kits:  # the same seeded random requests (and kit tests) to upstream and to the slimmed tree
        from slim.fuzz.drive import fuzz_command

        return fuzz_command(scenario, fuzz, seed, upstream, tree, db, logs, plan_source, fuzz_deadline_s,
                            fuzz_budget_s, console, kits, kits_timeout_s, kits_budget_s, fuzz_together)
    if on_upstream:
        from slim.upstream import resolve_tree
        from slim.verify import verify_upstream

        path, report = verify_upstream(scenario, db, resolve_tree(upstream), logs)
        verdict = "identical to" if report["passed"] else f"differs from ({report['first_mismatch']})"
        return console.print(f"{scenario}: upstream, untraced, {verdict} the reference (report: {path})",
                             highlight=False, soft_wrap=True)
    path, report = run_verify(scenario, db, tree, logs, plan_source)
    for line in report["diagnosis"]:
        console.print(line, highlight=False, soft_wrap=True)
    if not report["passed"]:
        raise SlimError(f"{scenario}: slimmed tree differs from the reference: {report['first_mismatch']}"
                        f"{cross_gpu_note(report)} (report: {path})")
    console.print(f"{scenario}: {report['requests_compared']} requests identical to the reference (report: {path})")


@app.command()
def bundle(deps_site: Annotated[Path, typer.Option(help="The third-party runtime.")] = REPO / ".rt/stage/deps/site",
           tree: Annotated[Path, typer.Option(help="The slimmed tree (holds python/sglang).")] = OUT,
           out: Annotated[Path, typer.Option(help="Where parts, manifest, unpack.sh go.")] = REPO / ".carry/bundle",
           wheels: Annotated[Path | None, typer.Option(help="Pinned wheels (upstream sizes).")] = REPO / ".rt/wheels",
           part_mib: Annotated[int, typer.Option(help="Largest part, MiB.")] = 60,
           summary: Annotated[Path | None, typer.Option(help="Summary JSON path (+ manifest.json.gz).")] = None,
           jit_cache: Annotated[Path | None, typer.Option(
               help="A JIT cache tar to ship (checked against the host by unpack.sh).")] = None,
           db: DbOpt = DB) -> None:
    """Pack the slimmed tree and its third-party runtime, pruned by what the recordings used, into parts."""
    from slim.bundle import build_bundle
    from slim.bundle import summary as make_summary
    from slim.bundle_plan import usage_from_recordings
    from slim.datafile import write_gzip_json
    from slim.recording import load_all
    from slim.upstream import load_pin

    recordings = load_all(db, load_pin().version)
    manifest = build_bundle(deps_site, tree, out, usage_from_recordings(recordings),
                            wheels if wheels and wheels.is_dir() else None, part_mib << 20,
                            sorted(r.name for r in recordings), jit_cache=jit_cache)
    if summary:  # the full manifest (3 MB of JSON) beside it, compressed: it names every kept file
        summary.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(make_summary(manifest), indent=1) + "\n")
        write_gzip_json(manifest, summary.with_name("manifest.json.gz"))
    table = Table("library", "upstream MiB", "kept MiB", "GPU code upstream MiB", "GPU code kept MiB")
    for row in manifest["libraries"] + [{"library": "total", **manifest["totals"]}]:
        table.add_row(row["library"], *(f"{row[k] / 2**20:,.1f}" for k in (
            "upstream_bytes", "kept_bytes", "gpu_fatbin_upstream", "gpu_fatbin_kept")))
    console.print(table)
    size = sum(p["size"] for p in manifest["parts"])
    console.print(f"{len(manifest['parts'])} part(s), {size / 2**20:.1f} MiB in {out}; unpack: sh {out}/unpack.sh DEST")
    if "jit_cache" in manifest:
        console.print(f"JIT cache: {json.dumps(manifest['jit_cache']['key'])}", highlight=False, soft_wrap=True)


@app.command()
def surface(db: DbOpt = DB,
            derive: Annotated[bool, typer.Option("--derive", help="Re-derive the inventory from upstream.")] = False,
            as_json: Annotated[bool, typer.Option("--json", help="Every item with its status, as JSON.")] = False,
            show_all: Annotated[bool, typer.Option("--all", help="List every unstatused item.")] = False,
            policy: Annotated[Path | None, typer.Option(help="The surface policy (default slim/surface.toml).")] = None,
            ) -> None:
    """The serving surface (routes, flags, fields, sampling parameters, entry points) and each item's status."""
    from slim.surface.policy import POLICY
    from slim.surface.report import run_surface

    run_surface(db, policy or POLICY, derive, as_json, show_all, 30, console)


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds through `finally`, so a server we started is stopped, not orphaned.
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app(standalone_mode=True)
    except SlimError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        raise SystemExit(1) from None
