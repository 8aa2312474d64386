"""`slim check` on reads of class members the plan deleted (slim/check_members.py), on a small tree
shaped like the KV-events bug: `EventPublisherFactory` kept, its `create` gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from slim import upstream as up
from slim.check import Modules, check_tree
from slim.check_members import FOLDED, OFF_SURFACE, REFUSED, SUBCLASS_NOTE, UNGUARDED, check_members
from slim.flag_guards import flag_dests
from slim.policy import OffSurface, Policy, Sampled, load_policy
from slim.surface import read_inventory, removed_items

REPO = Path(__file__).resolve().parents[2]

POLICY = Policy(sampled=(Sampled("sglang/srt/managers/", "request handling"),))
DESTS = {"kv_events_config": "--kv-events-config", "enable_pdmux": "--enable-pdmux"}
FACTORY = "sglang/srt/disaggregation/kv_events.py"
UPSTREAM_FACTORY = """class EventPublisherFactory:
    _registry = {}

    @classmethod
    def create(cls, config):
        return cls._build(config)

    @classmethod
    def _build(cls, config):
        return config
"""
SLIM_FACTORY = "class EventPublisherFactory:\n    _registry = {}\n"  # the plan deleted create and _build
COMMON = {"sglang/__init__.py": "", "sglang/srt/__init__.py": "", "sglang/srt/managers/__init__.py": "",
          "sglang/srt/disaggregation/__init__.py": "", "sglang/srt/runner/__init__.py": "",
          "sglang/srt/utils.py": "def is_hip():\n    return False\n"}


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in {**COMMON, **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.fixture
def check(tmp_path):
    """check(files, upstream's own files, refused ids) -> the report: the files are in both trees
    (upstream's own replace them there); the slimmed tree has SLIM_FACTORY, upstream UPSTREAM_FACTORY."""
    tree, upstream = tmp_path / "slim", tmp_path / "upstream"
    (tree / "python").mkdir(parents=True)
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')

    def run(files: dict[str, str], upstream_files: dict[str, str] | None = None, refused: frozenset = frozenset(),
            policy: Policy = POLICY):
        write(tree / "python", {FACTORY: SLIM_FACTORY, **files})
        write(upstream, {**files, FACTORY: UPSTREAM_FACTORY, **(upstream_files or {})})
        return check_tree(tree, upstream, policy, flags=(DESTS, set(refused), set()))

    return run


def members_noted(report) -> dict[str, int]:
    return {what: n for what, n in report.notes.items() if "deleted class members" in what or "`self` reads" in what}


def test_a_read_by_class_name_on_the_request_path_fails(check):
    caller = ("from sglang.srt.disaggregation.kv_events import EventPublisherFactory\n\n\n"
              "def init_kv_events(config):\n    return EventPublisherFactory.create(config)\n")
    assert check({"sglang/srt/managers/publisher.py": caller}).errors == [
        "sglang/srt/managers/publisher.py:5: EventPublisherFactory.create, which slim deleted, read by class name "
        "in init_kv_events on the request path (keep the member)"]


def test_a_read_through_a_relative_import_and_a_re_export_fails_too(check):
    reexport = "from .kv_events import EventPublisherFactory as Factory\n"
    caller = "from ..disaggregation import Factory\n\n\ndef init(config):\n    return Factory.create(config)\n"
    report = check({"sglang/srt/disaggregation/__init__.py": reexport, "sglang/srt/managers/publisher.py": caller})
    assert [e.split(": ", 1)[1].split(",")[0] for e in report.errors] == ["EventPublisherFactory.create"]


def test_a_read_under_an_accepted_flag_fails_and_under_a_refused_one_passes(check):
    caller = ("from sglang.srt.disaggregation.kv_events import EventPublisherFactory as Factory\n\n\n"
              "def start(server_args):\n    if server_args.kv_events_config:\n"
              "        return Factory.create(server_args.kv_events_config)\n")
    files = {"sglang/srt/runner/start.py": caller}
    assert check(files).errors == [
        "sglang/srt/runner/start.py:6: EventPublisherFactory.create, which slim deleted, read by class name in start "
        "when --kv-events-config, which the front door accepts (refuse it in slim/surface.toml or keep the member)"]
    refused = check(files, refused=frozenset({"flag:--kv-events-config"}))
    assert refused.errors == [] and members_noted(refused) == {REFUSED: 1}


def test_a_flag_read_through_a_config_bag_counts_and_off_surface_code_is_allowed(check):
    """`get_exec().kv.kv_events_config` reads the launch flag as `server_args.kv_events_config` does
    (upstream's resolved-config namespaces); in [[off_surface]] code the read is allowed whatever
    flag it tests there: the feature that leads there is refused (PD disaggregation's sender reads
    `get_parallel().dp_size`)."""
    caller = ("from sglang.srt.disaggregation.kv_events import EventPublisherFactory as Factory\n\n\n"
              "def start():\n    if get_exec().kv.kv_events_config:\n"
              "        return Factory.create(None)\n")
    files = {"sglang/srt/runner/start.py": caller}
    assert [e.split(" when ")[1].split(",")[0] for e in check(files).errors] == ["--kv-events-config"]
    off = Policy(sampled=POLICY.sampled, off_surface=(OffSurface("sglang/srt/runner/", "PD disaggregation"),))
    report = check(files, policy=off)
    assert report.errors == [] and members_noted(report) == {OFF_SURFACE: 1}


def test_a_read_under_no_flag_off_the_request_path_is_counted_not_failed(check):
    caller = ("from sglang.srt.disaggregation.kv_events import EventPublisherFactory\n\n\n"
              "def start():\n    return EventPublisherFactory.create(None)\n")
    report = check({"sglang/srt/runner/start.py": caller})
    assert report.errors == [] and members_noted(report) == {UNGUARDED: 1}


def test_a_read_on_a_hip_branch_is_dead_on_nvidia(check):
    caller = ("from sglang.srt.disaggregation.kv_events import EventPublisherFactory\n"
              "from sglang.srt.utils import is_hip\n\n_is_hip = is_hip()\n\n\n"
              "def init(config):\n    if _is_hip:\n        return EventPublisherFactory.create(config)\n"
              "    return None\n")
    report = check({"sglang/srt/managers/publisher.py": caller})
    assert report.errors == [] and members_noted(report) == {FOLDED: 1}


def test_self_reads_follow_the_class_and_its_bases(check):
    """`self.init_pdmux()` in the scheduler finds nothing once its mixin lost the method; the
    factory's own `cls._build` read is counted where kv_events.py sits (off the request path)."""
    upstream_mixin = "class SchedulerMultiplexMixin:\n    def init_pdmux(self):\n        return 1\n"
    scheduler = ("from sglang.srt.managers.mixin import SchedulerMultiplexMixin\n\n\n"
                 "class Scheduler(SchedulerMultiplexMixin):\n    def __init__(self, enable):\n"
                 "        if enable:\n            self.init_pdmux()\n")
    factory = UPSTREAM_FACTORY.replace("    @classmethod\n    def _build(cls, config):\n        return config\n", "")
    report = check({"sglang/srt/managers/mixin.py": "class SchedulerMultiplexMixin:\n    pass\n",
                    "sglang/srt/managers/scheduler.py": scheduler, FACTORY: factory},
                   {"sglang/srt/managers/mixin.py": upstream_mixin})
    assert report.errors == ["sglang/srt/managers/scheduler.py:7: Scheduler.init_pdmux, which slim deleted, read "
                             "by self in Scheduler.__init__ on the request path (keep the member)"]
    assert members_noted(report) == {UNGUARDED: 1}  # EventPublisherFactory.create reads cls._build


def test_reads_that_still_find_something_are_no_reads_of_a_deleted_member(check):
    """A member a kept subclass defines (`self` may be one: counted apart), one the class's code
    sets on `self`, one a base still defines, a class with `__getattr__`: none fails."""
    upstream = ("class Base:\n    def ping(self):\n        return 0\n\n\n"
                "class Child(Base):\n    def run(self):\n        return self.hook() + self.ping() + self.forward()\n\n"
                "    def hook(self):\n        return 1\n\n    def ping(self):\n        return 1\n\n"
                "    def forward(self):\n        return 2\n\n\n"
                "class Leaf(Child):\n    def hook(self):\n        return 3\n\n\n"
                "class Lazy:\n    def find(self):\n        return self.get()\n\n"
                "    def get(self):\n        return 4\n\n"
                "    def __getattr__(self, name):\n        return 5\n")
    slim = (upstream.replace("    def hook(self):\n        return 1\n\n", "")  # Child's hook: Leaf has one
            .replace("    def ping(self):\n        return 1\n\n", "")  # Child's ping: Base has one
            .replace("    def forward(self):\n        return 2\n\n\n", "\n    def __init__(self):\n"
                     "        self.forward = lambda: 2\n\n\n")
            .replace("    def get(self):\n        return 4\n\n", ""))
    report = check({"sglang/srt/managers/family.py": slim}, {"sglang/srt/managers/family.py": upstream})
    assert report.errors == [] and members_noted(report) == {SUBCLASS_NOTE: 1}


def test_assignments_and_members_upstream_lacks_are_not_reads_of_deleted_members(check):
    caller = ("from sglang.srt.disaggregation.kv_events import EventPublisherFactory\n\n\n"
              "def init(config):\n    EventPublisherFactory.create = staticmethod(lambda c: c)\n"
              "    return EventPublisherFactory.created\n")
    report = check({"sglang/srt/managers/publisher.py": caller})
    assert report.errors == [] and members_noted(report) == {}


def test_without_upstream_there_is_nothing_to_compare_with(tmp_path):
    tree = tmp_path / "slim"
    write(tree / "python", {FACTORY: SLIM_FACTORY, "sglang/srt/managers/publisher.py":
                            "from sglang.srt.disaggregation.kv_events import EventPublisherFactory\n"
                            "EventPublisherFactory.create(None)\n"})
    (tree / "python" / "pyproject.toml").write_text('[project]\nname = "sglang"\ndependencies = []\n')
    assert check_tree(tree, None, POLICY).errors == []


UPSTREAM = up.default_tree(up.load_pin())


@pytest.mark.skipif(not UPSTREAM.is_dir(), reason="upstream sglang not fetched")
def test_the_committed_tree_reads_no_deleted_member_where_it_counts():
    """The committed tree, against upstream: no read of a deleted member on the request path or
    under a flag the front door accepts (the plan keeps such members: slim/reach_rules.py)."""
    tree = REPO / "sglang" / "python"
    slim, upstream = Modules(tree), Modules(UPSTREAM)
    rels = {module: path.relative_to(tree).as_posix() for module, path in slim.files.items()}
    inventory = read_inventory(REPO / "coverage_db", up.load_pin().version)["items"]
    flags = flag_dests(inventory), {row["id"] for row in removed_items()}
    report = check_members(rels, slim.tree, upstream.tree, load_policy(), flags)
    assert report.findings == [], report.findings[:10]
