"""Removed by slim: `python -m sglang.cli.generate` says how to get it back (slim/front_door.py)."""

MESSAGE = "`sglang generate` (diffusion-model generation) was removed from this slimmed SGLang (it runs diffusion models only (sglang/multimodal_gen/, off the surface): for any other checkpoint, a DeepSeek one included, upstream raises 'Generate subcommand is not yet supported'). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply."

if __name__ == "__main__":
    raise SystemExit(f"sglang.cli.generate: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
