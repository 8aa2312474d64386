"""Removed by slim: `python -m sglang.srt.utils.model_file_verifier` says how to get it back (slim/front_door.py)."""

MESSAGE = 'model file checksums at load (--model-checksum) was removed from this slimmed SGLang (no scenario verifies checkpoint checksums, and the verifier was cut; record a scenario with --model-checksum to bring it back). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply.'

if __name__ == "__main__":
    raise SystemExit(f"sglang.srt.utils.model_file_verifier: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
