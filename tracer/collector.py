"""Function-entry collector for every Python process of a traced server.

Stdlib only: it runs inside the processes it measures and must not change what
they import. One `Collector` owns the sys.monitoring tool id; PY_START records a
code object once and returns DISABLE, so steady-state cost is near zero. A
daemon thread flushes one shard per process atomically every few seconds, so a
SIGKILLed process loses at most one interval.
"""

from __future__ import annotations

import atexit
import gzip
import json
import multiprocessing.util
import os
import socket
import sys
import threading
import time

SHARD_SCHEMA = "slim-shard/1"

# Where shards go; the collector does nothing unless this is set.
TRACE_DIR_ENV = "SLIM_TRACE_DIR"
# Seconds between flushes: the most a killed process can lose.
INTERVAL_ENV = "SLIM_TRACE_INTERVAL"
DEFAULT_INTERVAL = 2.0

monitoring = sys.monitoring


class Collector:
    """Records (file, qualname, first line) of every code object that starts."""

    def __init__(self, trace_dir: str, interval: float) -> None:
        self.trace_dir = os.path.join(trace_dir, socket.gethostname())
        self.interval = interval
        self.tool_id: int | None = None
        self.lock = threading.Lock()
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        """Fresh identity and empty sets: a new process owns a new shard."""
        self.pid = os.getpid()
        self.started_ns = time.time_ns()
        self.functions: set[tuple[str, str, int]] = set()
        self.written_count = -1
        self.shard_path = os.path.join(self.trace_dir, f"{self.pid}-{self.started_ns}.json.gz")

    def start(self) -> None:
        """Claim a free tool id, register PY_START, start flushing."""
        for tool_id in range(monitoring.PROFILER_ID, monitoring.OPTIMIZER_ID):
            if monitoring.get_tool(tool_id) is None:
                monitoring.use_tool_id(tool_id, "slim")
                self.tool_id = tool_id
                break
        else:
            return  # every tool id is taken: measure nothing rather than break the host
        monitoring.register_callback(self.tool_id, monitoring.events.PY_START, self._on_py_start)
        monitoring.set_events(self.tool_id, monitoring.events.PY_START)
        os.makedirs(self.trace_dir, exist_ok=True)
        os.register_at_fork(after_in_child=self._after_fork_in_child)
        atexit.register(self.flush)
        self._arm_exit_flush()
        multiprocessing.util.register_after_fork(self, Collector._arm_exit_flush)
        self._start_flusher()

    def _arm_exit_flush(self) -> None:
        """multiprocessing children leave through os._exit, skipping atexit: flush from its finalizers."""
        multiprocessing.util.Finalize(None, self.flush, exitpriority=-100)

    def _on_py_start(self, code, instruction_offset):
        """First entry of a code object: remember it, then never fire for it again."""
        self.functions.add((code.co_filename, code.co_qualname, code.co_firstlineno))
        return monitoring.DISABLE

    def _after_fork_in_child(self) -> None:
        """A forked child measures itself: re-arm disabled events, new shard, new flusher."""
        self.lock = threading.Lock()
        self._reset_process_state()
        monitoring.restart_events()
        self._start_flusher()

    def _start_flusher(self) -> None:
        thread = threading.Thread(target=self._flush_forever, name="slim-tracer-flush", daemon=True)
        thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # a full disk must not take the server down
                pass

    def flush(self) -> None:
        """Write this process's shard atomically if anything new was recorded."""
        with self.lock:
            functions = sorted(self.functions.copy())
            modules = _imported_modules()
            if len(functions) + len(modules) == self.written_count:
                return
            shard = {
                "schema": SHARD_SCHEMA,
                "pid": self.pid,
                "ppid": os.getppid(),
                "host": socket.gethostname(),
                "argv": sys.argv,
                "started_ns": self.started_ns,
                "flushed_ns": time.time_ns(),
                "functions": functions,
                "modules": modules,
            }
            tmp_path = f"{self.shard_path}.tmp"
            with gzip.open(tmp_path, "wt", encoding="utf-8") as f:
                json.dump(shard, f)
            os.replace(tmp_path, self.shard_path)
            self.written_count = len(functions) + len(modules)


def _imported_modules() -> dict[str, str | None]:
    """Module name -> file it was loaded from (None for builtins and namespaces)."""
    return {
        name: getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if module is not None
    }


def start_from_environment() -> Collector | None:
    """Start collecting when SLIM_TRACE_DIR is set; called from the boot hook."""
    trace_dir = os.environ.get(TRACE_DIR_ENV)
    if not trace_dir:
        return None
    collector = Collector(trace_dir, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    collector.start()
    return collector
