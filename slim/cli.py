"""The `slim` command line: fetch, scenarios, record, apply, verify."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from slim.errors import SlimError

REPO = Path(__file__).resolve().parent.parent
DB = REPO / "coverage_db"
OUT = REPO / "sglang"

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
              ) -> None:
    """List the scenarios: what each needs, and where/when it was last recorded."""
    from scenarios.spec import load_scenario, scenario_names
    from slim.recording import last_recorded

    if plan is not None:
        scenario = load_scenario(plan)
        ports = [30000 + 10 * rank for rank in range(scenario.hardware.nodes)]
        for launch in scenario.launch_plan("python3", "<model>", ports, dist_port=30100):
            env = " ".join(f"{k}={v}" for k, v in {**scenario.server_env, **launch.env}.items())
            console.print(f"{env} {' '.join(launch.argv)}", highlight=False, soft_wrap=True)
        return
    recorded = last_recorded(db)
    table = Table("scenario", "GPUs", "nodes", "sm", "last recorded", "state")
    not_runnable = []
    for name in scenario_names():
        s = load_scenario(name)
        if s.status:
            not_runnable.append(f"{name}: {s.status}")
        state = "recorded" if name in recorded else "not runnable here" if s.status else "not recorded yet"
        table.add_row(name, str(s.hardware.gpus), str(s.hardware.nodes),
                      f"{round(s.hardware.min_compute_capability * 10)}+", recorded.get(name, "never"), state)
    console.print(table)
    for line in not_runnable:
        console.print(f"- {line}", highlight=False)


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


@app.command()
def apply(upstream: UpstreamOpt = None, db: DbOpt = DB,
          out: Annotated[Path, typer.Option(help="Where the slimmed tree goes.")] = OUT,
          check: Annotated[bool, typer.Option("--check", help="Fail if --out differs; write nothing.")] = False,
          ) -> None:
    """Write the slimmed tree from the recordings (or check the committed one)."""
    from slim import upstream as up
    from slim.apply import apply_plan
    from slim.plan import make_plan, package_files
    from slim.recording import load_all

    tree = up.resolve_tree(upstream)
    pin = up.load_pin()
    recordings = load_all(db, pin.version)
    plan = make_plan(package_files(tree), recordings)
    diffs = apply_plan(plan, tree, pin, out, check=check)
    if diffs:
        shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
        raise SlimError(f"{out} is not what `slim apply` writes ({len(diffs)} differences): {shown}")
    verb = "matches" if check else "written to"
    console.print(f"slimmed tree {verb} {out}: kept {len(plan.kept)} files, removed {len(plan.removed)} "
                  f"(from {len(recordings)} recording(s))")


@app.command()
def verify(scenario: Annotated[str, typer.Option(help="Scenario name.")], db: DbOpt = DB,
           tree: Annotated[Path, typer.Option(help="The slimmed tree (holds python/sglang).")] = OUT,
           logs: LogsOpt = Path("logs")) -> None:
    """Serve the scenario from the slimmed tree on this GPU host; compare with the recorded reference."""
    from slim.verify import verify as run_verify

    path, report = run_verify(scenario, db, tree, logs)
    if not report["passed"]:
        raise SlimError(f"{scenario}: slimmed tree differs from the reference: {report['first_mismatch']} "
                        f"(report: {path})")
    console.print(f"{scenario}: {report['requests_compared']} requests identical to the reference (report: {path})")


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
