"""Collector for every Python process of a traced server: functions, lines, libraries, files.

Stdlib only: it runs inside the processes it measures and must not change what
they import. One `Collector` owns a sys.monitoring tool id; PY_START records a
code object once and returns DISABLE, so steady-state cost is near zero. In line
mode (SLIM_TRACE_LINES=1) code objects under the include prefixes also get local
LINE events, each recording (file, line) once and returning DISABLE.

Code that torch.compile traces runs inside the compiled graph without ever starting as a
Python frame, so PY_START cannot see it; once torch has loaded its dynamo tracing context, the
code objects dynamo reports as traced are recorded as run too (`_watch_dynamo`).

Beyond Python it records the shared libraries mapped into the process
(/proc/self/maps, read at each flush) and the files the process opened (an audit
hook on the 'open' event that only adds the path to a set).

Crash safety, and its bound: a daemon thread flushes one shard per process
atomically every SLIM_TRACE_INTERVAL seconds (2 s); atexit, multiprocessing's
finalizers (children leave through os._exit) and, where SIGTERM still has its
default action at start-up, a SIGTERM handler flush on the way out. A process
that is SIGKILLed, or SIGTERMed after the application installed its own
handler, loses at most what it recorded during the last interval.
"""

from __future__ import annotations

import atexit
import gzip
import json
import multiprocessing.util
import os
import signal
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
# "1": also record executed lines (of code under the include prefixes).
LINES_ENV = "SLIM_TRACE_LINES"
# os.pathsep-separated path prefixes for line mode; unset or empty: every file.
INCLUDE_ENV = "SLIM_TRACE_INCLUDE"
# "0": leave SIGTERM alone (by default a handler that flushes is installed where SIGTERM is SIG_DFL).
SIGTERM_ENV = "SLIM_TRACE_SIGTERM"
# Opened paths under these are not files a run depends on.
SKIPPED_OPEN_PREFIXES = ("/proc/", "/sys/", "/dev/")

monitoring = sys.monitoring


class Collector:
    """Records (file, qualname, first line) of every code object that starts, and more (see module doc)."""

    def __init__(self, trace_dir: str, interval: float, lines: bool = False,
                 include: tuple[str, ...] = (), sigterm: bool = True) -> None:
        self.trace_dir = os.path.join(trace_dir, socket.gethostname())
        self.interval = interval
        self.line_mode = lines
        self.include = tuple(include)
        self.sigterm = sigterm
        self.tool_id: int | None = None
        self.lock = threading.Lock()
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        """Fresh identity and empty sets: a new process owns a new shard."""
        self.pid = os.getpid()
        self.started_ns = time.time_ns()
        self.functions: set[tuple[str, str, int]] = set()
        self.lines: set[tuple[str, int]] = set()
        self.shared_libs: set[str] = set()
        self.opened_files: set[str] = set()
        # [dynamo's TracingContext.traced_code list, how much of it flushes have read] per context
        self.traced_code: list[list] = []
        self.written_count = -1
        self.shard_path = os.path.join(self.trace_dir, f"{self.pid}-{self.started_ns}.json.gz")

    def start(self) -> None:
        """Claim a free tool id, register PY_START (and LINE), start flushing."""
        for tool_id in range(monitoring.PROFILER_ID, monitoring.OPTIMIZER_ID):
            if monitoring.get_tool(tool_id) is None:
                monitoring.use_tool_id(tool_id, "slim")
                self.tool_id = tool_id
                break
        else:
            return  # every tool id is taken: measure nothing rather than break the host
        on_start = self._on_py_start_lines if self.line_mode else self._on_py_start
        monitoring.register_callback(self.tool_id, monitoring.events.PY_START, on_start)
        if self.line_mode:
            monitoring.register_callback(self.tool_id, monitoring.events.LINE, self._on_line)
        monitoring.set_events(self.tool_id, monitoring.events.PY_START)
        os.makedirs(self.trace_dir, exist_ok=True)
        sys.addaudithook(self._on_audit)
        os.register_at_fork(after_in_child=self._after_fork_in_child)
        atexit.register(self.flush)
        self._arm_exit_flush()
        multiprocessing.util.register_after_fork(self, Collector._arm_exit_flush)
        self._watch_dynamo()
        if self.sigterm:
            self._arm_sigterm_flush()
        self._start_flusher()

    def _arm_exit_flush(self) -> None:
        """multiprocessing children leave through os._exit, skipping atexit: flush from its finalizers."""
        multiprocessing.util.Finalize(None, self.flush, exitpriority=-100)

    def _arm_sigterm_flush(self) -> None:
        """Flush on SIGTERM, but only where nobody handles it yet (then die by SIGTERM as before).

        Only the main thread may set handlers; an application that installs its own handler
        later replaces this one, and then the periodic flush is what bounds the loss.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except (ValueError, OSError):
            return

    def _on_sigterm(self, signum, frame) -> None:
        try:
            self.flush(timeout=1.0)  # the interrupted main thread may hold the lock (atexit flush)
        except Exception:
            pass
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def _on_py_start(self, code, instruction_offset):
        """First entry of a code object: remember it, then never fire for it again."""
        self.functions.add((code.co_filename, code.co_qualname, code.co_firstlineno))
        return monitoring.DISABLE

    def _on_py_start_lines(self, code, instruction_offset):
        """As _on_py_start, and switch on LINE events for this code object when it is included."""
        filename = code.co_filename
        self.functions.add((filename, code.co_qualname, code.co_firstlineno))
        if not self.include or filename.startswith(self.include):
            try:
                monitoring.set_local_events(self.tool_id, code, monitoring.events.LINE)
            except ValueError:
                pass
        return monitoring.DISABLE

    def _on_line(self, code, line_number):
        self.lines.add((code.co_filename, line_number))
        return monitoring.DISABLE

    def _on_traced_code(self, code) -> None:
        """A code object torch.compile's dynamo traced: it runs inside a compiled graph."""
        filename = code.co_filename
        self.functions.add((filename, code.co_qualname, code.co_firstlineno))
        if self.line_mode and (not self.include or filename.startswith(self.include)):
            # dynamo names code objects, not lines: count all of its lines as run (more, never less)
            self.lines.update((filename, line) for _, _, line in code.co_lines() if line is not None)

    def _watch_dynamo(self) -> None:
        """Keep a reference to each TracingContext's traced_code list, once torch has loaded that
        class; flush reads them (`_read_traced_code`), so dynamo's own list stays a plain list the
        collector never writes to. Only looks in sys.modules, so it imports nothing; the flusher
        retries."""
        context = getattr(sys.modules.get("torch._guards"), "TracingContext", None)
        if context is None or "_slim_original_init" in vars(context):
            return
        original, collector = context.__init__, self

        def __init__(ctx, *args, **kwargs):
            original(ctx, *args, **kwargs)
            collector.traced_code.append([ctx.traced_code, 0])  # after a fork: the child's lists

        context._slim_original_init = original
        context.__init__ = __init__

    def _read_traced_code(self) -> None:
        """Record what dynamo traced since the last flush (a list still being traced grows later)."""
        for entry in self.traced_code[:]:  # a compile in another thread may add one meanwhile
            codes, read = entry
            new = codes[read:]
            for code in new:
                self._on_traced_code(code)
            entry[1] = read + len(new)

    def _on_audit(self, event, args):
        """Runs on every audit event of the process: keep it to a compare and a set add."""
        if event == "open":
            path = args[0]
            if isinstance(path, str):
                if not path.startswith("/"):
                    path = os.path.abspath(path)
            elif isinstance(path, bytes):
                path = os.path.abspath(os.fsdecode(path))
            else:
                return  # a file descriptor or a path-like
            if not path.startswith(SKIPPED_OPEN_PREFIXES):
                self.opened_files.add(path)

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

    def flush(self, timeout: float = -1) -> None:
        """Write this process's shard atomically if anything new was recorded."""
        if not self.lock.acquire(timeout=timeout):
            return
        try:
            self._watch_dynamo()
            self._read_traced_code()
            self.shared_libs.update(_mapped_shared_libs())
            functions = sorted(self.functions.copy())
            lines = sorted(self.lines.copy())
            own_prefix = self.trace_dir + os.sep
            opened = sorted(p for p in self.opened_files.copy() if not p.startswith(own_prefix))
            shared_libs = sorted(self.shared_libs)
            modules = _imported_modules()
            count = len(functions) + len(lines) + len(opened) + len(shared_libs) + len(modules)
            if count == self.written_count:
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
                "shared_libs": shared_libs,
                "opened_files": opened,
            }
            if self.line_mode:
                shard["lines"] = lines
                shard["include"] = list(self.include)
            tmp_path = f"{self.shard_path}.tmp"
            with gzip.open(tmp_path, "wt", encoding="utf-8") as f:
                json.dump(shard, f)
            os.replace(tmp_path, self.shard_path)
            self.written_count = count
        finally:
            self.lock.release()


def _imported_modules() -> dict[str, str | None]:
    """Module name -> file it was loaded from (None for builtins and namespaces)."""
    return {
        name: getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if module is not None
    }


def _mapped_shared_libs() -> set[str]:
    """Files of the shared objects mapped now (empty where there is no /proc)."""
    libs = set()
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for row in f:
                fields = row.split(None, 5)
                if len(fields) == 6:
                    path = fields[5].rstrip("\n")
                    if path.startswith("/") and ".so" in os.path.basename(path):
                        libs.add(path.removesuffix(" (deleted)"))
    except OSError:
        pass
    return libs


def start_from_environment() -> Collector | None:
    """Start collecting when SLIM_TRACE_DIR is set; called from the boot hook."""
    trace_dir = os.environ.get(TRACE_DIR_ENV)
    if not trace_dir:
        return None
    include = tuple(p for p in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if p)
    collector = Collector(trace_dir, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)),
                          lines=os.environ.get(LINES_ENV) == "1", include=include,
                          sigterm=os.environ.get(SIGTERM_ENV) != "0")
    collector.start()
    return collector
