"""Each surface item's one status, computed from the committed recordings and slim/surface.toml:
recorded (naming the runs), kept or removed (policy, with its reason), or unstatused."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from slim.errors import SlimError
from slim.surface.policy import Entry

SAMPLING_ROUTE_MODELS = {"GenerateReqInput"}  # whose bodies carry `sampling_params`
OPENAI_SAMPLING_MODELS = {"CompletionRequest", "ChatCompletionRequest"}  # same-named top-level fields map to it


def path_pattern(template: str) -> re.Pattern:
    """A route path template as a regex: `/v1/models/{model:path}` matches `/v1/models/a/b`."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join(("(.+)" if p.endswith(":path}") else "([^/]+)") if p.startswith("{") else re.escape(p)
                              for p in parts) + "$")


def flag_values(argv: list[str], names: list[str]) -> list[str] | None:
    """The values a command gives a flag (`--x v1 v2` or `--x=v`): None when absent, [] for a bare switch."""
    found = None
    for at, token in enumerate(argv):
        name, eq, value = token.partition("=")
        if name not in names:
            continue
        found = found or []
        if eq:
            found.append(value)
            continue
        for following in argv[at + 1:]:
            if following.startswith("--"):
                break
            found.append(following)
    return found


def canonical_argv(argv: list[str], names: dict[str, str]) -> list[str]:
    """argv with each `--option` spelled as its flag's primary name: aliases, and argparse's unique-prefix
    abbreviations (`--tp 2` is `--tp-size 2`), resolved as upstream's parser resolves them."""
    out = []
    for token in argv:
        option, eq, value = token.partition("=")
        if option.startswith("--") and option not in names:
            matches = {flag for name, flag in names.items() if name.startswith(option)}
            option = matches.pop() if len(matches) == 1 else option
        out.append(names.get(option, option) + eq + value)
    return out


def served(recording) -> list[tuple[str, str, dict | None]]:
    """(method, path, body) of the requests a recording sent that the server did not fail (< 500)."""
    rows = []
    for out in recording.data["outputs"]:
        status = out.get("status")
        if isinstance(status, int) and status < 500 and out.get("method") and out.get("path"):
            rows.append((out["method"].upper(), out["path"].split("?")[0], out.get("body")))
    return rows


def flag_table(items: list[dict]) -> dict[str, list[str]]:
    """Each launch flag (primary name) -> every name it answers to (itself and its aliases)."""
    return {item["name"]: [item["name"]] + item["aliases"] for item in items if item["kind"] == "flag"}


def named_flags(argv: list[str], table: dict[str, list[str]]) -> dict[str, list[str]]:
    """The flags (primary names) a command names, each with the values it gives them."""
    command = canonical_argv(argv, {name: flag for flag, names in table.items() for name in names})
    return {flag: values for flag in table if (values := flag_values(command, [flag])) is not None}


def flag_ids(named: dict[str, list[str]]) -> list[str]:
    """Their surface item ids: each flag's, and each of its values'."""
    return [key for flag, values in named.items()
            for key in (f"flag:{flag}", *(f"flag:{flag}={value}" for value in values))]


def launch_evidence(items: list[dict], launches: dict[str, list[str]]) -> dict[str, list[str]]:
    """Item id -> the scenarios (name -> launch argv) whose launch names that flag or flag value: where
    an item no recording exercised would be recorded. Only what a launch names; defaults need a run."""
    table, known, evidence = flag_table(items), {item["id"] for item in items}, defaultdict(set)
    for scenario, argv in launches.items():
        for key in flag_ids(named_flags(argv, table)):
            evidence[key].add(scenario)
    return {key: sorted(names) for key, names in evidence.items() if key in known}


def ran_at_source(item: dict, functions: set[tuple[str, str]]) -> bool:
    """Whether a recording's executed functions (file, qualname) include the def an item's `source`
    ("file::qualname": a route's handler, an Engine method) names."""
    file, _, qualname = item["source"].partition("::")
    return (file, qualname) in functions


def recording_evidence(items: list[dict], recordings: list, by_policy: frozenset[str] = frozenset()
                       ) -> dict[str, list[str]]:
    """Item id -> names of the recordings that exercised it, by the rules of each kind. A launch that
    leaves a flag out runs its default value (`--kv-cache-dtype=auto`), unless the policy statuses
    the flag (`by_policy`: kept for hardware whose default no recording could judge; a refused flag's
    default counts, as the front door accepts the flag named with it)."""
    evidence: dict[str, set[str]] = defaultdict(set)
    ids = {item["id"] for item in items}
    defaults = {item["name"]: value for item in items if item["kind"] == "flag" and item["id"] not in by_policy
                and (value := f"{item['id']}={item.get('default')}") in ids}
    routes = [(item, path_pattern(item["path"])) for item in items if item["kind"] == "route"]
    table = flag_table(items)
    fields = [item for item in items if item["kind"] == "field"]
    nesting = Nesting.of(fields)
    sampling = {item["name"] for item in items if item["kind"] == "sampling_param"}
    for rec in recordings:
        name = f"{rec.scenario}/{rec.name}"
        functions = {(f[0], f[1]) for f in rec.data["functions"]}
        sent = served(rec)
        taken = defaultdict(list)  # model -> bodies of the requests sent to a route that takes it
        for item, pattern in routes:
            bodies = [body for method, path, body in sent if method == item["method"] and pattern.match(path)]
            if bodies and ran_at_source(item, functions):
                evidence[item["id"]].add(name)
                for model in item["models"]:
                    taken[model] += [b for b in bodies if isinstance(b, dict)]
        taken = nested_bodies(nesting, taken)
        for item in fields:
            if any(wire_name(item) in body for body in taken.get(item["model"], ())):
                evidence[item["id"]].add(name)
        for model in SAMPLING_ROUTE_MODELS | OPENAI_SAMPLING_MODELS:
            for body in taken.get(model, ()):
                params = body.get("sampling_params") if model in SAMPLING_ROUTE_MODELS else body
                for key in (params if isinstance(params, dict) else {}):
                    if key in sampling:
                        evidence[f"sampling:{key}"].add(name)
        named = named_flags(rec.data["command"], table)
        for key in flag_ids(named):
            evidence[key].add(name)
        if "--config" not in named:  # a --config file may set any flag: its default is unknown
            for flag in set(defaults) - set(named):
                evidence[defaults[flag]].add(name)
        argvs = [p.get("argv") or [] for p in rec.data["processes"]] + [rec.data["command"]]
        for item in items:
            if item["kind"] in ("entry_point", "console_script") and any(runs(argv, item) for argv in argvs):
                evidence[item["id"]].add(name)
            elif item["kind"] == "engine_method" and ran_at_source(item, functions):
                evidence[item["id"]].add(name)
    known = {item["id"] for item in items}  # a flag value without `choices` (`--tp-size=2`) is no item
    return {key: sorted(names) for key, names in evidence.items() if key in known}


ALIAS = re.compile(r"""\balias=['"]([^'"]+)['"]""")


def wire_name(item: dict) -> str:
    """The key a client sends for a field: its pydantic alias (`schema_ = Field(alias="schema")`), else its name."""
    alias = ALIAS.search(item.get("default") or "")
    return alias.group(1) if alias else item["name"]


@dataclass(frozen=True)
class Nesting:
    """Which request models a field's type names, and how to tell the members of a union apart: derived
    once from the inventory's fields (the same for every recording)."""

    parents: list[tuple[str, str, str]]  # (model, field's wire name, the model nested there)
    names: dict[str, set[str]]  # model -> its fields' wire names
    tags: dict[str, set[str]]  # model -> the values its `type: Literal[...]` field allows

    @classmethod
    def of(cls, fields: list[dict]) -> Nesting:
        names: dict[str, set[str]] = defaultdict(set)
        tags: dict[str, set[str]] = {}
        for item in fields:
            names[item["model"]].add(wire_name(item))
            if item["name"] == "type" and item["type"].startswith("Literal["):
                tags[item["model"]] = set(re.findall(r"'([^']*)'", item["type"]))
        return cls([(item["model"], wire_name(item), nested) for item in fields for nested in item.get("nests", ())],
                   names, tags)

    def holds(self, model: str, obj: dict) -> bool:
        """A member of a union is the model whose fields hold all its keys and whose tag it carries."""
        return set(obj) <= self.names[model] and (model not in self.tags or obj.get("type") in self.tags[model])


def nested_bodies(nesting: Nesting, taken: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Add the bodies of nested request models: the objects a sent body holds under a field whose type
    names that model (`tools[].function` is a Function), through every level of nesting."""
    taken = {model: list(bodies) for model, bodies in taken.items()}
    seen = {model: {id(obj) for obj in bodies} for model, bodies in taken.items()}
    changed = True
    while changed:
        changed = False
        for model, key, nested in nesting.parents:
            for obj in [obj for body in taken.get(model, ()) for obj in _objects(body.get(key))]:
                if id(obj) not in seen.setdefault(nested, set()) and nesting.holds(nested, obj):
                    seen[nested].add(id(obj))
                    taken.setdefault(nested, []).append(obj)
                    changed = True
    return taken


def _objects(value) -> list[dict]:
    """The JSON objects a field value holds: itself, or the members of a list (of lists)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [obj for member in value for obj in _objects(member)]
    return []


def runs(argv: list[str], item: dict) -> bool:
    """Whether a process argv runs an entry point (`-m module`, or its file) or a console script."""
    if item["kind"] == "console_script":  # `sglang` or a subcommand of it, `sglang serve`
        script, *subcommand = item["name"].split(" ", 1)
        return bool(argv) and argv[0].rsplit("/", 1)[-1] == script and argv[1:1 + len(subcommand)] == subcommand
    return any(token == item["module"] and at and argv[at - 1] == "-m" or token.endswith("/" + item["source"])
               for at, token in enumerate(argv))


def statuses(items: list[dict], evidence: dict[str, list[str]], policy: list[Entry]) -> tuple[list[dict], list[str]]:
    """Items with `status`, `evidence` and `reason`; plus warnings (keeps that a recording made stale).
    A removal of a recorded item is an error: something a scenario runs cannot leave."""
    listed = {item: entry for entry in policy for item in entry.items}
    clashes = sorted(i for i, e in listed.items() if e.section == "removed" and evidence.get(i))
    if clashes:
        raise SlimError(f"surface policy removes {len(clashes)} recorded item(s): {', '.join(clashes[:10])} "
                        f"(recorded by {evidence[clashes[0]][0]})")
    rows, warnings = [], []
    for item in items:
        entry, runs_of = listed.get(item["id"]), evidence.get(item["id"], [])
        row = {**item, "evidence": runs_of, "reason": "", "feature": "", "scenario": ""}
        if runs_of:
            row["status"] = "recorded"
            if entry is not None:
                warnings.append(f"stale keep: {item['id']} is recorded by {runs_of[0]}; drop it from surface.toml")
        elif entry is not None:
            row.update(status=entry.section, reason=entry.reason, feature=entry.feature, scenario=entry.scenario)
        else:
            row["status"] = "unstatused"
        rows.append(row)
    return rows, warnings
