"""Second fixture entry point, beside the sglang fixture (whose files it only uses).

Run in line mode: loads a real extension module, reads the MoE JSON config, runs
the DeepSeek fixture model, and starts a spawn child that is SIGTERMed before
its first periodic flush.
"""
import _ctypes  # noqa: F401  (a real extension module: it must show up in shared_libs)
import multiprocessing as mp
import sys
import time


def terminated_worker(ready):
    from sglang.srt.utils import is_cuda

    is_cuda()
    ready.set()
    time.sleep(60)


def main():
    from sglang.srt.layers.moe import load_config
    from sglang.srt.models.deepseek import DeepseekV3ForCausalLM

    load_config("E=256.json")
    DeepseekV3ForCausalLM().forward(1)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    worker = ctx.Process(target=terminated_worker, args=(ready,))
    worker.start()
    if not ready.wait(60):
        sys.exit("worker never got ready")
    worker.terminate()
    worker.join()
    print(f"worker exitcode {worker.exitcode}")


if __name__ == "__main__":
    main()
