"""Removed by slim: `python -m sglang.benchmark.dspark_sps_profiler` says how to get it back (slim/front_door.py)."""

MESSAGE = 'DSpark speculative decoding was removed from this slimmed SGLang (not a DeepSeek V2/V3/R1 feature: DSpark drafts only for DeepSeek V4 and Kimi targets (deepseek_v2.py has no DSpark hook); DeepSeek V3/R1 speculate with their MTP layer). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply.'

if __name__ == "__main__":
    raise SystemExit(f"sglang.benchmark.dspark_sps_profiler: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
