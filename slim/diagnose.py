"""Map a slimmed server's missing-symbol errors back to the Plan entries that deleted the symbol.

Input: a server log (tracebacks from any process) and a plan as `slim plan --json` writes it.
Output: one finding per distinct missing symbol: what was missing, which plan entry removed it
and why, and the fix (`slim apply --keep ...` into the keep-policy, or the scenario to re-record).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

from slim.errors import SlimError
from slim.module_names import module_files
from slim.policy import Policy
from slim.reach import OFF_SURFACE_STUB

FRAME = re.compile(r'File "(?P<path>[^"]+)", line \d+')
# The exception line of a traceback; sglang's loggers may put a prefix before it.
ERRORS = [
    ("module", re.compile(r"ModuleNotFoundError: No module named '(?P<module>[\w.]+)'")),
    ("name", re.compile(r"ImportError: cannot import name '(?P<name>\w+)' from (?:partially initialized module )?"
                        r"'(?P<module>[\w.]+)'")),
    ("name", re.compile(r"NameError: name '(?P<name>\w+)' is not defined")),
    ("name", re.compile(r"AttributeError: (?:partially initialized )?module '(?P<module>[\w.]+)' "
                        r"has no attribute '(?P<name>\w+)'")),
    ("member", re.compile(r"AttributeError: (?:type object )?'(?P<owner>\w+)'(?: object)? "
                          r"has no attribute '(?P<name>\w+)'")),
    ("registry", re.compile(r"KeyError: '(?P<name>\w+)'")),
    # A def the plan kept as a stub (slim.transforms.rewrite) was called after all.
    ("stub", re.compile(r"NotImplementedError: slim removed the body of (?P<name>[\w.]+):")),
    # A class kept by name whose implementations of its bases' abstract methods were cut: one
    # missing member per method (3.12 quotes them: "... abstract methods 'run', 'runner_backend'").
    ("member", re.compile(r"TypeError: Can't instantiate abstract class (?P<owner>\w+) "
                          r"(?:without an implementation for|with) abstract methods? (?P<names>.+)$")),
]


@dataclass(frozen=True)
class Missing:
    kind: str  # module | name | member | registry | stub
    name: str  # the missing module (dotted), name, attribute or key
    module: str | None  # the module it was looked up in, when the message names one
    owner: str | None  # the class, for a missing member
    file: str | None  # innermost sglang frame, relative to the upstream root
    error: str  # the exception line as logged


@dataclass(frozen=True)
class Finding:
    missing: Missing
    entry: str | None  # plan entry that removed it: "file" or "file::qualname"; None: not the plan
    reason: str | None  # that entry's reason
    off_surface: str | None = None  # the policy's [[off_surface]] path that let line evidence stub it

    def line(self, scenario: str | None = None) -> str:
        """One line: what was missing, which plan entry removed it, and the fix."""
        what = f"{self.missing.error.split(':', 1)[0]}: {_describe(self.missing)}"
        if self.entry is None:
            return f"{what}: no plan entry removed it (third-party, or not a slimming fault)"
        cover = (f"or re-record {scenario} (`slim record --scenario {scenario}`) so it covers this path"
                 if scenario else "or add a scenario that runs this path and record it")
        fix = f"`slim apply --keep {self.entry} --reason '...' --scenario SCENARIO`, {cover}"
        if self.off_surface:
            fix += f", or take {self.off_surface} out of slim/policy.toml's [[off_surface]] (a feature in use)"
        return f"{what}: removed by plan entry {self.entry} ({self.reason}); fix: {fix}"


def _describe(missing: Missing) -> str:
    if missing.kind == "module":
        return f"module {missing.name}"
    where = missing.owner or missing.module or missing.file
    return f"{missing.name}" + (f" (in {where})" if where else "")


def sglang_path(path: str) -> str | None:
    """'/tmp/slim-tree/python/sglang/srt/utils.py' -> 'sglang/srt/utils.py'; None outside sglang."""
    at = path.replace("\\", "/").rfind("/sglang/")
    return path[at + 1:] if at >= 0 and path.endswith((".py", ".so")) else None


def parse_log(text: str) -> list[Missing]:
    """Every distinct missing module/name/attribute/registry key in the log's tracebacks, in order."""
    found: dict[tuple, Missing] = {}
    frame_file = None  # innermost sglang frame of the traceback being read
    for line in text.splitlines():
        if "Traceback (most recent call last)" in line:
            frame_file = None
        if (frame := FRAME.search(line)) and (path := sglang_path(frame["path"])):
            frame_file = path
            continue
        for kind, pattern in ERRORS:
            if match := pattern.search(line):
                groups = match.groupdict()
                names = re.findall(r"\w+", groups["names"]) if groups.get("names") else \
                    [groups["module"] if kind == "module" else groups["name"]]
                for name in names:
                    missing = Missing(kind, name, None if kind == "module" else groups.get("module"),
                                      groups.get("owner"), frame_file, line[match.start():].strip())
                    found.setdefault((kind, missing.name, missing.module, missing.owner), missing)
                break
    return list(found.values())


class PlanIndex:
    """Lookups over a plan's JSON form: removed files, deleted defs, dropped registry names."""

    def __init__(self, plan: dict):
        try:
            self.removed = {f["path"]: f["reason"] for f in plan["files"] if not f["keep"]}
            self.deleted = {(d["file"], d["qualname"]): d["reason"] for d in plan["defs"]
                            if d["action"] in ("delete", "stub")}
            self.registry = {f: set(e.get("registry", [])) for f, e in plan.get("edits", {}).items()}
        except (KeyError, TypeError) as exc:
            raise SlimError(f"not a `slim plan --json` plan: missing {exc}") from None

    def removed_module(self, module: str) -> tuple[str, str] | None:
        """The removed file that makes `module` unimportable: itself or its nearest removed package."""
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            for file in module_files(".".join(parts[:n])):
                if file in self.removed:
                    return file, self.removed[file]
        return None

    def deleted_def(self, name: str, files: list[str], owner: str | None = None) -> tuple[str, str] | None:
        """A deleted def called `name` (a member of `owner`), in `files` first, else anywhere if unique."""
        def matches(qualname: str) -> bool:
            return qualname == f"{owner}.{name}" or qualname.endswith(f".{owner}.{name}") if owner \
                else qualname == name
        hits = [(f, q) for (f, q) in self.deleted if matches(q)]
        preferred = [h for h in hits if h[0] in files] or (hits if len({f for f, _ in hits}) == 1 else [])
        if not preferred:
            return None
        file, qualname = preferred[0]
        return f"{file}::{qualname}", self.deleted[(file, qualname)]


def locate(missing: Missing, index: PlanIndex) -> Finding:
    """The plan entry that removed what `missing` names, if any."""
    hit = None
    if missing.kind == "module":
        hit = index.removed_module(missing.name) if missing.name.split(".")[0] == "sglang" else None
    else:
        files = [missing.file] if missing.file else []
        if missing.module:
            files = module_files(missing.module) + files
        if missing.kind == "registry":  # a KeyError is only ours when the plan dropped that registry name
            dropped_in = [f for f, names in index.registry.items() if missing.name in names]
            hit = index.deleted_def(missing.name, dropped_in) if dropped_in else None
        else:
            hit = index.deleted_def(missing.name, files, missing.owner)
        if hit is None and missing.module:  # `from pkg import sub` / `pkg.sub`: a removed submodule
            hit = index.removed_module(f"{missing.module}.{missing.name}")
    return Finding(missing, *(hit or (None, None)))


def diagnose(log_text: str, plan: dict, policy: Policy | None = None) -> list[Finding]:
    index = PlanIndex(plan)
    findings = [locate(m, index) for m in parse_log(log_text)]
    return [_off_surface(f, policy) for f in findings] if policy else findings


def _off_surface(finding: Finding, policy: Policy) -> Finding:
    """Name the [[off_surface]] path (or `prefix::glob`) when the plan stubbed the def as
    off the surface: the feature the policy called outside the surface was used after all."""
    if finding.entry is None or finding.reason != str(OFF_SURFACE_STUB):  # the plan JSON: prose
        return finding
    file, _, qualname = finding.entry.partition("::")
    off = policy.off_surface_for(file, qualname)
    return dataclasses.replace(finding, off_surface=off.path) if off else finding


def load_plan_json(path: Path) -> dict:
    """`slim plan --json` output, or a slimmed tree's PLAN.json.gz."""
    try:
        data = path.read_bytes()
        return json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
    except (OSError, EOFError, ValueError) as exc:
        raise SlimError(f"plan {path}: {exc}") from None


def compute_plan(upstream: Path | None, db: Path, recordings: set[str] | None = None) -> dict:
    """The plan `slim apply` would use now, from the upstream tree and the committed recordings;
    only those named in `recordings` when given (those a slimmed tree was planned from: a run of a
    scenario the tree has not seen yet must not count as kept what it alone ran)."""
    from slim import upstream as up
    from slim.plan import make_function_plan, package_files
    from slim.recording import load_all

    tree = up.resolve_tree(upstream)
    runs = [r for r in load_all(db, up.load_pin().version) if recordings is None or r.name in recordings]
    plan = make_function_plan(tree, package_files(tree), runs)
    return json.loads(plan.to_json())
