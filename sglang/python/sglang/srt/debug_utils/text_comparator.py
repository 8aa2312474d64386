"""Removed by slim: `python -m sglang.srt.debug_utils.text_comparator` says how to get it back (slim/front_door.py)."""

MESSAGE = 'developer debugging and evaluation scripts was removed from this slimmed SGLang (offline tools for comparing tensor dumps, truncating models, simulating the scheduler and running accuracy evals; no part of serving). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply.'

if __name__ == "__main__":
    raise SystemExit(f"sglang.srt.debug_utils.text_comparator: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
