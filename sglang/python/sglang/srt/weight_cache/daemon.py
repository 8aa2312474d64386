"""Removed by slim: `python -m sglang.srt.weight_cache.daemon` says how to get it back (slim/front_door.py)."""

MESSAGE = 'the GPU weight-cache daemon (--weight-cache-mode daemon/client) was removed from this slimmed SGLang (no scenario loads weights through a cache daemon, and the daemon and its client were cut; --weight-cache-mode off (the default) loads from disk as before). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply.'

if __name__ == "__main__":
    raise SystemExit(f"sglang.srt.weight_cache.daemon: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
