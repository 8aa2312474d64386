"""Removed by slim: `python -m sglang.srt.entrypoints.ollama.smart_router` says how to get it back (slim/front_door.py)."""

MESSAGE = "the Ollama smart-router demo (sglang.srt.entrypoints.ollama.smart_router) was removed from this slimmed SGLang (a client-side demo, not part of the server: it asks a judge model on a separate Ollama server (llama3.2 at localhost:11434 by default) whether a chat is simple, then sends it there or to a remote server's Ollama /api/chat; the server's own Ollama-compatible routes stay). To get it back: record a scenario that uses it (slim record --scenario ...) and run slim apply."

if __name__ == "__main__":
    raise SystemExit(f"sglang.srt.entrypoints.ollama.smart_router: {MESSAGE}")
raise ModuleNotFoundError(MESSAGE, name=__name__)
