"""Two runs of the same specs (upstream, slim) -> what is wrong with slim's. Pure.

Bodies are not compared (sampling differs between two servers); what is: a request answered 2xx on
one side and 4xx/5xx on the other, a 5xx on slim that upstream did not also give, a request past its
deadline or unanswered (dead server), a server that died, /health not 200 after the run, and a
greedy /generate after the run that must give the same tokens on both sides."""

from __future__ import annotations

from slim.fuzz.generate import RequestSpec
from slim.surface.policy import REFUSAL_MARK  # a removed feature refused at its front door: the point

FAILED = ("hang", "no_answer")


def describe(spec: RequestSpec) -> str:
    """'#12 POST /generate [sampling:min_p, ...] (malformed wrong_type:top_k)' for a problem line."""
    fields = ", ".join(spec.fields[1:]) or "no optional fields"
    return f"#{spec.id} {spec.method} {spec.path} [{fields}]" + (f" (malformed {spec.malformed})"
                                                               if spec.malformed else "")


def refused_at_front_door(row: dict) -> bool:
    return row["class"] == "4xx" and REFUSAL_MARK in row.get("excerpt", "")


def row_problem(spec: RequestSpec, up: dict, slim: dict, deadline_s: float) -> str | None:
    """What is wrong with slim's answer to one request, given upstream's; None when nothing is."""
    what = f"{describe(spec)}: slim"
    if slim["class"] == "hang" and up["class"] != "hang":
        return f"{what} gave no answer within {deadline_s:g} s (upstream: {up['class']})"
    if slim["class"] == "no_answer" and up["class"] != "no_answer":
        return f"{what} did not answer (connection {slim.get('excerpt') or 'failed'}; upstream: {up['class']})"
    if slim["class"] in FAILED:
        return None  # upstream failed the same way: not the slimming's doing (listed in notes)
    if slim["class"] == "5xx" and up["class"] != "5xx":
        return (f"{what} {slim['status']} where upstream answered {up['status'] or up['class']}: "
                f"{slim.get('excerpt', '')[:160]}")
    if (slim["class"] == "2xx") != (up["class"] == "2xx") and up["class"] not in FAILED and \
            not refused_at_front_door(slim):
        return f"{what} {slim['status']} where upstream answered {up['status']}" + (
            f": {slim.get('excerpt', '')[:160]}" if slim["class"] != "2xx" else "")
    return None


def after_problems(run: dict, side: str) -> list[str]:
    """A server that died during the run, or is not healthy after it."""
    problems = []
    if not run.get("server_alive", True):
        problems.append(f"{side}: the server process died during the run")
    if run["after"]["health"] != 200:
        problems.append(f"{side}: /health after the run answered {run['after']['health'] or 'nothing'}")
    return problems


def compare(specs: list[RequestSpec], upstream: dict, slim: dict, deadline_s: float) -> tuple[list[str], list[str]]:
    """(problems, notes): problems fail the run; notes say what upstream itself did wrong, and what
    slim refused at its front door."""
    if "start_failure" in upstream:
        return [f"upstream never got healthy ({upstream['start_failure']}): nothing to compare with"], []
    if "start_failure" in slim:
        return [f"slim never got healthy: {slim['start_failure']}"], []
    ids = [spec.id for spec in specs]
    if [r["id"] for r in upstream["rows"]] != ids or [r["id"] for r in slim["rows"]] != ids:
        raise ValueError("the runs did not send the same requests: not comparable")
    problems, notes = [], []
    for spec, up, got in zip(specs, upstream["rows"], slim["rows"], strict=True):
        problem = row_problem(spec, up, got, deadline_s)
        if problem:
            problems.append(problem)
        if up["class"] in FAILED or up["class"] == "5xx" == got["class"]:
            notes.append(f"{describe(spec)}: upstream {up['status'] or up['class']}, "
                         f"slim {got['status'] or got['class']}")
        elif refused_at_front_door(got) and up["class"] == "2xx":
            notes.append(f"{describe(spec)}: refused at slim's front door: {got['excerpt'][:160]}")
    upstream_after = after_problems(upstream, "upstream")
    notes += [f"{line} (the comparison after it means little)" for line in upstream_after]
    problems += after_problems(slim, "slim")
    want, got = upstream["after"]["greedy"], slim["after"]["greedy"]
    if not upstream_after and want != got:
        problems.append(f"greedy /generate after the run: slim {str(got)[:120]} != upstream {str(want)[:120]}")
    return problems, notes
