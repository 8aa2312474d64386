"""Class members kept code reads as `Cls.member` or `self.member` on the request path or on a branch no
recording took (slim/reach_rules.py `_flag_reach`): the shape of the KV-events bug, where the plan kept
`EventPublisherFactory` and deleted its `create`, on a small package beside the fixture tree."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slim.apply import apply_plan
from slim.plan import make_function_plan, package_files
from slim.policy import Keep, OffSurface, Policy, Sampled, Whole
from slim.reach import NEVER_RUN
from slim.reasons import Reason, Why
from slim.tests.test_function_plan import decisions, recording_of

MEMBER_READ = Reason(Why.MEMBER_READ)
EVENTS, START = "sglang/srt/events.py", "sglang/srt/start.py"
FILES = {
    EVENTS: '''class Factory:
    def __init__(self, config):
        self.config = config
        self.strategy = self._pick if config == "session" else None  # a bound method, taken not called

    def _pick(self):
        return "picked"

    @classmethod
    def _rebuild(cls, config):
        return f"rebuilt {config}"

    @classmethod
    def create(cls, config):
        return cls._build(describe(config))

    @classmethod
    def _build(cls, config):
        return f"built {config}"

    def unused(self):
        return "never"


def describe(config):
    return f"publisher {config}"


class GrowMixin:
    def _grow(self, n):
        return n * 2

    def _shrink(self, n):
        return n // 2
''',
    START: '''import os

from sglang.srt.events import Factory, GrowMixin, describe

DESCRIBERS = [describe]


class Pool(GrowMixin):
    def alloc(self, n):
        if os.environ.get("SLIM_FIXTURE_GROW"):
            return self._grow(n)
        return n


def start():
    if os.environ.get("SLIM_FIXTURE_EVENTS"):
        return Factory.create("zmq"), Pool().alloc(2)
    return None, Pool().alloc(2)


def orphan():
    return Factory.unused(None)


def maintenance():
    return Factory._rebuild("x")
'''}
RAN = {START: ["start", "Pool.alloc"], EVENTS: []}
FLAG_BRANCHES = ("return self._grow(n)", "return Factory.create(")  # the lines no recording executed


@pytest.fixture
def tree(wheel_tree):
    root, pin = wheel_tree
    for rel, text in FILES.items():
        (root / rel).write_text(text)
    return root, pin


def plan_of(root, policy: Policy, cold: tuple[str, ...] = FLAG_BRANCHES):
    """The plan from one recording that ran RAN and executed every line of its files but `cold`'s."""
    recording = recording_of(root, RAN)
    lines = [row for row in recording.data["lines"]
             if not (row[0] == START and any(c in FILES[START].splitlines()[row[1] - 1] for c in cold))]
    return make_function_plan(root, package_files(root), [type(recording)(recording.path, {**recording.data,
                                                                                         "lines": lines})], policy)


def test_members_read_on_a_branch_no_recording_took_stay_whole_and_run(tree, tmp_path):
    """`Factory.create(...)` and `self._grow(n)` sit on branches of code that ran (launch flags no
    scenario set): the members stay whole though their classes never ran a method, with what they
    read and call in turn (`cls._build`, `describe`) and the inherited member `self` finds
    (`GrowMixin._grow`), so the branch runs on the slimmed tree."""
    root, pin = tree
    plan = plan_of(root, Policy())
    events = decisions(plan, EVENTS)
    assert events["Factory.create"] == ("keep", MEMBER_READ) and events["Factory._build"] == ("keep", MEMBER_READ)
    assert events["GrowMixin._grow"] == ("keep", MEMBER_READ) and events["describe"][0] == "keep"
    assert events["Factory.unused"] == events["GrowMixin._shrink"] == ("delete", NEVER_RUN)
    out = tmp_path / "sglang"
    apply_plan(plan, root, pin, out)
    env = {**os.environ, "PYTHONPATH": str(out / "python"), "SLIM_FIXTURE_EVENTS": "1", "SLIM_FIXTURE_GROW": "1"}
    code = "from sglang.srt.start import start; print(start())"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "('built publisher zmq', 4)", run.stderr


def test_a_read_on_an_executed_line_is_no_such_evidence(tree):
    """Where every line ran, `Factory.create` never did: the untouched-class cut stands."""
    events = decisions(plan_of(tree[0], Policy(), cold=()), EVENTS)
    assert events["Factory.create"] == events["GrowMixin._grow"] == ("delete", NEVER_RUN)


def test_members_request_handling_reads_stay_if_kept_code_names_them(tree):
    """On the request path what runs depends on each request: a member read there stays, though
    every line ran; not one only a def the plan deletes reads (`orphan`'s `Factory.unused`)."""
    request = Policy(sampled=(Sampled(START, "request handling"),))
    plan = plan_of(tree[0], request, cold=())
    events = decisions(plan, EVENTS)
    assert events["Factory.create"] == ("keep", MEMBER_READ) and events["GrowMixin._grow"] == ("keep", MEMBER_READ)
    assert decisions(plan, START)["orphan"][0] == "delete" and events["Factory.unused"] == ("delete", NEVER_RUN)


def test_off_the_surface_a_member_so_read_is_a_stub(tree):
    """Under [[off_surface]] the member stays for the name (its class was never built: no constructor
    ran), as a stub: its body, and what only that body read, go."""
    off = Policy(off_surface=(OffSurface(EVENTS, "a feature the front door refuses"),))
    events = decisions(plan_of(tree[0], off), EVENTS)
    assert events["Factory.create"][0] == "stub" and events["Factory._build"] == ("delete", NEVER_RUN)
    just_create = OffSurface(EVENTS, "a feature the front door refuses", qualname="Factory.create")
    events = decisions(plan_of(tree[0], Policy(off_surface=(just_create,))), EVENTS)
    assert events["Factory.create"][0] == "stub" and events["describe"][0] == "stub"  # named elsewhere, never run


def test_a_whole_class_keeps_its_methods_though_none_ran(tree):
    """[[whole]] (code of hardware not lent here: the sm100 attention backends) promises a class its
    methods though no recording built it: the untouched-class cut spares it, and its methods are judged
    by name, where every line ran (the test above: there the cut deletes `create` and `_grow`). On
    2026-12-07 the cut ignored [[whole]], and trtllm_mha_backend lost 25 private helpers its kept methods
    call through `self`. A method no kept code names still goes (`unused`: only a deleted def names it)."""
    whole = Policy(wholes=(Whole(EVENTS, "needs an sm100 GPU", "sm100"),))
    events = decisions(plan_of(tree[0], whole, cold=()), EVENTS)
    referenced = ("keep", Reason(Why.REFERENCED))
    assert events["Factory.create"] == events["Factory._build"] == events["GrowMixin._grow"] == referenced
    assert events["Factory.unused"] == events["GrowMixin._shrink"] == ("delete", NEVER_RUN)


def test_an_untouched_class_keeps_what_its_constructor_takes_through_self(tree):
    """No method of `Factory` ran, so its members go unless read; its constructor stays (implicit) and
    takes `self._pick` as a value on a branch of its own: the member stays with it. The shape of
    `FullComponent.__init__` taking `self._session_ref_eviction_strategy` (AttributeError at start-up
    under --enable-session-radix-cache, H100 2026-12-07). `unused`, which nothing kept reads, goes."""
    events = decisions(plan_of(tree[0], Policy(), cold=()), EVENTS)
    assert events["Factory._pick"] == ("keep", MEMBER_READ)
    assert events["Factory.unused"] == ("delete", NEVER_RUN)


def test_what_policy_kept_code_reads_stays(tree):
    """A [[keep]] says its code may run (hardware not lent here, an environment switch): the members
    it reads stay with it. `UnifiedRadixCache.init_hicache`, kept whole, read
    `HybridCacheController.parse_storage_backend_extra_config`, which the plan had cut. Without the
    keep, `maintenance` (never run) goes, and what only it read."""
    events = decisions(plan_of(tree[0], Policy(), cold=()), EVENTS)
    assert events["Factory._rebuild"] == ("delete", NEVER_RUN)
    kept = Policy(keeps=(Keep(START, "maintenance", "an operator path no scenario runs", "s"),))
    plan = plan_of(tree[0], kept, cold=())
    assert decisions(plan, START)["maintenance"][0] == "keep"
    assert decisions(plan, EVENTS)["Factory._rebuild"] == ("keep", MEMBER_READ)
