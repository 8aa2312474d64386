"""One Markdown section per kind of committed result file; every figure is read from a file.

Each `*_section(repo)` takes the repository root and returns Markdown; `results_doc.py` joins them.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd

from slim.verify import report_passes

BENCH = "coverage_db/benchmarks"


def load(repo: Path, rel: str) -> dict:
    return json.loads((repo / rel).read_text())


def link(rel: str) -> str:
    # docs/results.md sits one folder below the root
    return f"[`{rel}`](../{rel})"


def num(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def spread(values, digits: int = 1) -> str:
    s = pd.Series(list(values), dtype=float)
    return f"{num(s.median(), digits)} ({num(s.min(), digits)}-{num(s.max(), digits)})"


def table(df: pd.DataFrame) -> str:
    """A Markdown table; a column whose every cell starts like a number is right-aligned."""
    right = [df[c].astype(str).str.match(r"[-+]?\d").all() for c in df.columns]
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---:" if r else "---" for r in right) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def machine(path: str) -> str:
    """The GPU a benchmark file names in its file name (`...-NVIDIA_H100_80GB_HBM3.json`)."""
    return Path(path).stem.split("-")[-1].replace("_", " ")


def result_files(repo: Path, pattern: str) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in repo.glob(pattern))


# --- the tree today: sglang/REMOVED.md, which every `slim apply` writes ---

def removed_md_figures(text: str) -> dict:
    rows = re.findall(r"^\| (upstream|kept|removed)\b[^|]*\| (\d+) \| (\d+) \|$", text, re.M)
    row = {name: (int(files), int(lines)) for name, files, lines in rows}
    inside = re.search(r"Upstream lines of the kept files: (\d+); written: (\d+) \((\d+) removed", text)
    policy = re.search(r"Kept by slim/policy.toml rather than by a recording: (\d+) upstream lines \((\d+) entries\)",
                       text)
    return {"rows": row, "recordings": len(re.findall(r"^- `\d{8}T\d{6}Z-", text, re.M)),
            "kept_files_upstream_lines": int(inside[1]), "function_level_removed": int(inside[3]),
            "policy_lines": int(policy[1]), "policy_entries": int(policy[2])}


def tree_today_section(repo: Path) -> str:
    rel = "sglang/REMOVED.md"
    f = removed_md_figures((repo / rel).read_text())
    up_lines = f["rows"]["upstream"][1]
    df = pd.DataFrame([(name, num(files), num(lines), f"{lines / up_lines:.1%}")
                       for name, (files, lines) in f["rows"].items()],
                      columns=["", "`.py` files", "lines", "of upstream"])
    return (f"Source: {link(rel)}, which every `slim apply` writes ({f['recordings']} recordings). Upstream's LLM "
            "server and its `test` package, without `multimodal_gen`:\n\n" + table(df) + "\n\n"
            f"Of the kept files' {num(f['kept_files_upstream_lines'])} upstream lines, "
            f"{num(f['function_level_removed'])} are removed by function-level slimming and NVIDIA platform "
            f"folding; {num(f['policy_lines'])} are kept by slim/policy.toml ({f['policy_entries']} entries) rather "
            "than by a recording.")


# --- GPU verify reports ---

def verify_frame(repo: Path, pattern: str) -> pd.DataFrame:
    rows = []
    for rel in result_files(repo, pattern):
        d = load(repo, rel)
        gpus = d.get("environment", {}).get("gpus") or [{}]
        judged = report_passes(d, [(repo / rel).parent])  # rejudged against the recording beside it
        rows.append({"file": rel, "scenario": d["scenario"], "digest": d["tree_digest"][:8], "passed": judged,
                     "verified_at": d.get("verified_at", ""), "gpu": gpus[0].get("name", "?"),
                     "runtime": d.get("runtime", "").split(",")[0], "compared": d.get("requests_compared"),
                     "outcome": outcome(d, judged)})
    return pd.DataFrame(rows)


def outcome(report: dict, judged: bool) -> str:
    if report["passed"]:
        return "passed"
    if judged:  # failed as the GPU wrote it; passes under today's comparison or across GPU models
        return "passed as judged today (the GPU run said: `" + str(report["first_mismatch"]).split(":")[0] + "`)"
    if report.get("start_failure"):
        return "did not start"
    return "mismatch: `" + str(report.get("first_mismatch") or "?").split(":")[0] + "`"


def verify_section(repo: Path) -> str:
    df = verify_frame(repo, "coverage_db/*/*.verify.json")
    df = df[~df.file.str.startswith(BENCH)]
    by_tree = df.groupby("digest").agg(reports=("file", "size"), passed=("passed", "sum"),
                                       first=("verified_at", "min"), last=("verified_at", "max"),
                                       gpu=("gpu", lambda s: ", ".join(sorted(set(s)))),
                                       runtime=("runtime", lambda s: ", ".join(sorted(set(s))))).reset_index()
    by_tree = by_tree.sort_values("last", ascending=False)
    by_tree["digest"] = "`" + by_tree["digest"] + "...`"
    per_report = df.sort_values("scenario").assign(
        file=lambda d: d.file.map(lambda f: f"[{Path(f).name}](../{f})"))[
        ["scenario", "digest", "outcome", "verified_at", "gpu", "compared", "file"]]
    return ("Source: the scenarios' own reports, `coverage_db/*/*.verify.json` (`slim verify`, via "
            "`bash ci/gpu_session.sh verify <scenarios>`), grouped by the digest of the tree each ran:\n\n"
            + table(by_tree.rename(columns={"digest": "tree digest"})) + "\n\nEvery report:\n\n" + table(per_report))


UNSEEN_PREFIXES = ("heldout-", "promoted-")


def unseen_table(repo: Path) -> str:
    """Scenario x tree: how each unseen scenario fared on the tree committed without it (file name prefix)."""
    df = verify_frame(repo, f"{BENCH}/*.verify.json")
    df["tree"] = df.apply(lambda r: "`" + Path(r.file).name.removesuffix(f"-{r.scenario}.verify.json") + "`", axis=1)
    df = df[df.file.map(lambda f: Path(f).name.startswith(UNSEEN_PREFIXES))]
    df["cell"] = df.apply(lambda r: f"{r.outcome} ({r.digest}, {r.verified_at[:16]})", axis=1)
    wide = df.pivot_table(index="scenario", columns="tree", values="cell", aggfunc="first", sort=False)
    return table(wide.fillna("not run").reset_index())


def other_reports_section(repo: Path) -> str:
    df = verify_frame(repo, f"{BENCH}/*.verify.json")
    df["file"] = df.file.map(lambda f: f"[{Path(f).name}](../{f})")
    return ("Reports kept beside the benchmarks (first attempts, unseen scenarios, upstream runs), "
            f"`{BENCH}/*.verify.json`:\n\n"
            + table(df[["file", "scenario", "digest", "outcome", "verified_at", "gpu", "runtime", "compared"]]))


# --- holdout (CPU) ---

def holdout_frame(data: dict) -> pd.DataFrame:
    rows = [{"scenario": r["scenario"], "recording": r["held_out"], "mode": r["mode"],
             "functions run": r["functions_run"], "missed": missed(r)} for r in data["rows"]]
    df = pd.DataFrame(rows)
    wide = df.pivot_table(index=["scenario", "recording", "functions run"], columns="mode", values="missed",
                          aggfunc="first", sort=False)
    return wide[data["modes"]].rename(columns=lambda m: f"missed by `{m}`").reset_index()


def missed(row: dict) -> str:
    text = num(len(row["functions"]))
    n = len(row["modules"])
    return text + (f" + {n} module{'s' if n > 1 else ''}" if n else "")


def holdout_section(repo: Path) -> str:
    rel = f"{BENCH}/holdout.json"
    data = load(repo, rel)
    wide = holdout_frame(data)
    wide["functions run"] = wide["functions run"].map(num)
    return (f"Source: {link(rel)} (`benchmarks/holdout.py --modes {','.join(data['modes'])}`, CPU; the option went "
            "with the modes). Each scenario is held out in turn, the plan is made from the other scenarios' "
            "recordings, and the functions the held-out run ran are looked up in that plan; a stub counts as a "
            "miss. The file lists every missed function.\n\n" + table(wide))


# --- benchmarks on the GPU ---

def change(runs: pd.DataFrame, key: str, by: str = "tree") -> str:
    """slim's median against upstream's, and the widest spread (max-min over median) of either tree."""
    g = runs.groupby(by)[key]
    med = g.median()
    widest = ((g.max() - g.min()) / med).max()
    return f"slim {med['slim'] / med['upstream'] - 1:+.0%} at the median, run-to-run spread up to {widest:.0%}"


def import_time_section(repo: Path) -> str:
    rel = result_files(repo, f"{BENCH}/import_time-*.json")[-1]
    d = load(repo, rel)
    runs = pd.DataFrame([{"tree": tree, "run": i + 1, **run} for tree, rs in d["runs"].items()
                         for i, run in enumerate(rs)])
    summary = pd.DataFrame([(tree, spread(g.import_s, 2), spread(g.process_s, 2), spread(g.peak_rss_mib, 0),
                             spread(g.modules, 0)) for tree, g in runs.groupby("tree", sort=False)],
                           columns=["tree", "import (s)", "process wall (s)", "peak RSS (MiB)", "modules"])
    samples = pd.DataFrame({"tree": runs.tree, "run": runs.run, "import (s)": runs.import_s.map(lambda x: num(x, 2)),
                            "process wall (s)": runs.process_s.map(lambda x: num(x, 2)),
                            "peak RSS (MiB)": runs.peak_rss_mib.map(num), "modules": runs.modules.map(num)})
    return (f"Source: {link(rel)} (`benchmarks/import_time.py` via `REPEATS={d['repeats']} ci/gpu_session.sh "
            f"bench`; 1x {machine(rel)}, Python {d['python']}; `import {d['entry']}` in fresh interpreters, "
            "upstream and slim alternating). Median (min-max):\n\n" + table(summary) + "\n\n"
            f"Import time: {change(runs, 'import_s')}; where the spread is as large as the change, it is an "
            "indication, not a speed-up to quote.\n\nEvery run:\n\n" + table(samples))


def serving_samples(d: dict) -> pd.DataFrame:
    rows = [{"tree": s["config"], "start": s["repeat"], "healthy (s)": s["healthy_s"],
             "decode (tok/s)": ", ".join(num(x) for x in s["decode_tok_per_s"]),
             "prefill (tok/s)": ", ".join(num(x) for x in s["prefill_tok_per_s"]),
             "peak RSS (MiB)": num(s["peak_rss_mib"]), "peak GPU mem (MiB)": num(s["peak_gpu_mem_mib"])}
            for s in d["samples"]]
    return pd.DataFrame(rows)


def serving_summary(d: dict) -> pd.DataFrame:
    measured = [s for s in d["samples"] if s["repeat"] >= 0]  # repeat -1: the unmeasured warm-up start
    def col(config, key):
        vals = [s[key] for s in measured if s["config"] == config]
        return [v for x in vals for v in (x if isinstance(x, list) else [x])]
    keys = [("healthy_s", "time to healthy (s)", 1), ("decode_tok_per_s", "decode (tok/s)", 0),
            ("prefill_tok_per_s", "prefill (tok/s)", 0), ("peak_rss_mib", "peak RSS (MiB)", 0),
            ("peak_gpu_mem_mib", "peak GPU memory (MiB)", 0)]
    rows = [(f"{label}, n={len(col(d['configs'][0], key))}", *(spread(col(c, key), digits) for c in d["configs"]))
            for key, label, digits in keys]
    sizes = d["install_size"]
    rows.append(("installed `sglang` package (MB / files)", *(
        f"{sizes[c]['package']['bytes'] / 1e6:.1f} / {num(sizes[c]['package']['files'])}" for c in d["configs"])))
    rows.append(("third-party site, shared (MB)", *[f"{sizes['deps_site']['bytes'] / 1e6:.1f}"] * len(d["configs"])))
    return pd.DataFrame(rows, columns=["median (min-max)", *d["configs"]])


def serving_changes(d: dict) -> str:
    measured = [s for s in d["samples"] if s["repeat"] >= 0]  # repeat -1: the unmeasured warm-up start
    starts = pd.DataFrame([{"tree": s["config"], "healthy_s": s["healthy_s"]} for s in measured])
    rounds = pd.DataFrame([{"tree": s["config"], "decode": x} for s in measured for x in s["decode_tok_per_s"]])
    return f"Time to healthy: {change(starts, 'healthy_s')}. Decode: {change(rounds, 'decode')}."


def serving_section(repo: Path) -> str:
    rel = result_files(repo, f"{BENCH}/serving-*.json")[-1]
    d = load(repo, rel)
    return (f"Source: {link(rel)} (`benchmarks/serving.py` via `REPEATS={d['repeats_planned']} ci/gpu_session.sh "
            f"serve-bench {d['scenario']}`; 1x {machine(rel)}; flags `{' '.join(d['flags'])}`; order "
            f"{', '.join(d['order'])}, {d['rounds']} measured rounds per start):\n\n" + table(serving_summary(d))
            + "\n\n" + serving_changes(d)
            + "\n\nEvery start (start -1 is the unmeasured warm-up):\n\n" + table(serving_samples(d)))


def faults_section(repo: Path) -> str:
    rel = result_files(repo, f"{BENCH}/faults-*.json")[-1]
    d = load(repo, rel)
    tables = d["status_tables"]
    classes = list(next(iter(tables.values())))
    df = pd.DataFrame([(c, *(", ".join(f"{k}: {v}" for k, v in tables[t].get(c, {}).items()) for t in tables))
                       for c in classes], columns=["request class", *tables])
    same_text = len({r["after"]["greedy_text"] for r in d["reports"].values()}) == 1
    rep = next(iter(d["reports"].values()))
    return (f"Source: {link(rel)} (`benchmarks/load_faults.py` via `ci/gpu_session.sh faults {d['scenario']}`; "
            f"1x {machine(rel)}; seed {d['seed']}, {rep['streams']} concurrent streams, the same schedule against "
            "each tree). Status codes per request class:\n\n" + table(df) + "\n\n"
            f"Passed: {d['passed']}; problems: {len(d['problems'])}; after the load `/health` returned "
            + ", ".join(f"{t} {r['after']['health_status']}" for t, r in d["reports"].items())
            + f"; the greedy request after it returned {'the same' if same_text else 'different'} text on both.")


def bundle_section(repo: Path, top: int = 12) -> str:
    rel = "coverage_db/bundle/manifest-summary.json"
    d = load(repo, rel)
    mib = 2 ** 20
    libs = pd.DataFrame(d["libraries"]).sort_values("upstream_bytes", ascending=False)
    shown, rest = libs.head(top), libs.iloc[top:]
    def row(name, r):
        return (name, num(r.upstream_bytes / mib, 1), num(r.kept_bytes / mib, 1),
                num(r.gpu_fatbin_upstream / mib, 1), num(r.gpu_fatbin_kept / mib, 1))
    rows = [row(f"`{r.library}`", r) for r in shown.itertuples()]
    rows.append(row(f"{len(rest)} others", rest[["upstream_bytes", "kept_bytes", "gpu_fatbin_upstream",
                                                  "gpu_fatbin_kept"]].sum()))
    t = d["totals"]
    rows.append(("**all**", num(t["upstream_bytes"] / mib, 1),
                 f"{num(t['kept_bytes'] / mib, 1)} ({t['kept_bytes'] / t['upstream_bytes']:.1%})",
                 num(t["gpu_fatbin_upstream"] / mib, 1),
                 f"{num(t['gpu_fatbin_kept'] / mib, 1)} ({t['gpu_fatbin_kept'] / t['gpu_fatbin_upstream']:.1%})"))
    df = pd.DataFrame(rows, columns=["library", "upstream MiB", "kept MiB", "GPU code upstream MiB",
                                     "GPU code kept MiB"])
    return (f"Source: {link(rel)} (`slim bundle`, CPU; the full manifest, every kept and pruned file, is "
            f"`coverage_db/bundle/manifest.json.gz`), from {len(d['recordings'])} recordings, tree digest "
            f"`{d['tree_digest'][:8]}...`; {num(t['files_kept'])} of {num(t['files_upstream'])} files kept. GPU code "
            "= CUDA fat-binary payloads of each shared library:\n\n" + table(df))


# --- `slim apply` speed: benchmarks/results/apply_speed.json (benchmarks/apply_speed.py --samples) ---

def apply_speed_section(repo: Path) -> str:
    rel = "benchmarks/results/apply_speed.json"
    d = load(repo, rel)
    m = d["machine"]
    rows = pd.DataFrame([{"code": label, "samples (s)": ", ".join(num(x, 2) for x in run["wall_s"]),
                          "median (min-max)": spread(run["wall_s"], 2), "measured": run["when"][:16]}
                         for label, run in d["runs"].items()])
    return (f"Source: {link(rel)}. Command: `{d['command']}`, on {m['nproc']} CPUs ({m['cpus_used']}) of an "
            f"{m['model_name']}, Python {m['python']}.\n\n" + table(rows))


# --- upstream's kit tests: the "kits" section of `slim verify --fuzz N --kits` reports (coverage_db/fuzz/) ---

def cell(text: str, width: int = 110) -> str:
    """A table cell: one line, no column break, cut to width."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[:width - 3] + "..."


def kits_table(kits: dict) -> str:
    rows = [(f"`{test_id}`", t["upstream"]["outcome"], t["slim"]["outcome"], t["verdict"],
             cell((t["upstream"] if t["verdict"].startswith("upstream") else t["slim"]).get("excerpt")
                  or t["upstream"].get("excerpt", "")))
            for test_id, t in kits["tests"].items()]
    return table(pd.DataFrame(rows, columns=["kit test", "upstream", "slim", "verdict", "why (excerpt)"]))


def kits_section(repo: Path) -> str:
    files = [rel for rel in result_files(repo, "coverage_db/fuzz/*.json*") if rel.endswith((".json", ".json.gz"))]
    reports = [(rel, json.loads(gzip.decompress((repo / rel).read_bytes()) if rel.endswith(".gz")
                                else (repo / rel).read_text())) for rel in files]
    reports = [(rel, d) for rel, d in reports if "kits" in d]
    intro = ("`slim verify --scenario S --fuzz N --kits` (via `KITS=1 bash ci/gpu_session.sh fuzz SEED N S`) runs "
             "upstream's own server-contract kit tests (`sglang/test/kits`, `tool_call_test_runner.py`; which and "
             "why: `slim/fuzz/kit_selection.py`) from the pristine upstream tree against each side's server. A "
             "test upstream passes must pass on slim unless slim refused it at its front door (`refused`); "
             "`not_run`: the kits budget ran out before it.")
    if not reports:
        return intro + "\n\nNo fuzz report with a kits section has been committed yet."
    parts = [intro]
    for rel, d in reports:
        sides = d["kits"]["sides"]
        took = ", ".join(f"{side} {s.get('seconds', '-')} s" for side, s in sides.items() if s.get("ran"))
        counts = ", ".join(f"{n} {verdict}" for verdict, n in d["kits"]["verdicts"].items())
        parts.append(f"### {d['scenario']} ({machine(rel.removesuffix('.gz'))}, {d['fuzzed_at'][:16]})\n\n"
                     f"Source: {link(rel)}, tree digest `{d['tree_digest'][:8]}...`; passed: {d['passed']}; "
                     f"{counts}; kits took {took}.\n\n" + kits_table(d["kits"]))
    return "\n\n".join(parts)
