"""Removed by slim: `python -m sglang.bench_one_batch_server` says how to get it back (slim/front_door.py)."""

MESSAGE = "the one-batch server benchmark (sglang.bench_one_batch_server) was removed from this slimmed SGLang (it imports upstream's test harness (sglang.test) at module level, which slim does not ship; sglang.bench_serving and sglang.bench_one_batch measure the same server and stay). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply."

if __name__ == "__main__":
    raise SystemExit(f"sglang.bench_one_batch_server: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
