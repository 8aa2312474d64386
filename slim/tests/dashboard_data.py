"""A tiny synthetic coverage_db for the dashboard tests and notebook runs: two scenarios, one with kernels."""

from pathlib import Path

from slim.recording import write_recording

MODEL = "sglang/srt/models/deepseek_v2.py"
MOE = "sglang/srt/layers/moe/fused.py"
SERVER = "sglang/srt/entrypoints/http_server.py"


def _recording(scenario, modules, functions, **extra):
    return {"scenario": scenario, "upstream": {"version": "0.5.17"}, "environment": {}, "command": [],
            "processes": [], "outputs": [], "modules": modules, "functions": functions, **extra}


def write_two_scenarios(db: Path) -> Path:
    """Both scenarios import the server and the model; only tp2 imports the MoE layer, and has kernels."""
    tp1 = _recording("tp1", [
        ["__main__", "sglang/launch_server.py", 3],
        ["sglang", None, 3],  # a namespace package has no file
        ["sglang.srt.entrypoints.http_server", SERVER, 1],
        ["sglang.srt.models.deepseek_v2", MODEL, 2],
    ], [
        [SERVER, "<module>", 1, 1], [SERVER, "launch", 10, 1],
        [MODEL, "<module>", 1, 2], [MODEL, "DeepseekV2.forward", 40, 2],
    ])
    tp2 = _recording("tp2", [
        ["sglang.srt.entrypoints.http_server", SERVER, 1],
        ["sglang.srt.layers.moe.fused", MOE, 2],
        ["sglang.srt.models.deepseek_v2", MODEL, 2],
    ], [
        [SERVER, "launch", 10, 1], [MOE, "fused_moe", 5, 2], [MOE, "_align", 20, 2],
        [MODEL, "DeepseekV2.forward", 40, 2],
    ], kernels=[["fused_moe_kernel", 12, 1500.0, "sglang/srt/layers/moe/fused.py::fused_moe_kernel"],
                ["nvjet_gemm", 30, 4250.5, None]])
    write_recording(tp1, db / "tp1" / "20261123T000000Z-a.json.gz")
    write_recording(tp2, db / "tp2" / "20261124T000000Z-b.json.gz")
    return db
