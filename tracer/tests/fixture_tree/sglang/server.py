"""Fixture entry point: a main process that starts workers the way a server does."""
import multiprocessing as mp
import subprocess
import sys
import threading
import time


def scheduler(conn_name):
    from sglang.srt.models.registry import resolve

    model = resolve("DeepseekV3ForCausalLM")()
    model.forward(1)


def detokenizer():
    from sglang.srt.layers.moe import load_config

    load_config("E=256.json")


def doomed_worker():
    """Runs, lets the tracer flush, then waits to be SIGKILLed."""
    from sglang.srt.utils import is_cuda

    is_cuda()
    time.sleep(60)


def tokenizer_thread():
    from sglang.srt.models.llama import LlamaForCausalLM

    LlamaForCausalLM().forward(0)


def main():
    spawn = mp.get_context("spawn").Process(target=scheduler, args=("spawn",))
    forked = mp.get_context("fork").Process(target=detokenizer)
    server = mp.get_context("forkserver").Process(target=scheduler, args=("forkserver",))
    doomed = mp.get_context("spawn").Process(target=doomed_worker)
    for process in (spawn, forked, server, doomed):
        process.start()
    thread = threading.Thread(target=tokenizer_thread)
    thread.start()
    thread.join()
    subprocess.run([sys.executable, "-c", "import sglang.srt.utils as u; u.is_hip()"], check=True)
    for process in (spawn, forked, server):
        process.join()
    time.sleep(float(sys.argv[1]))  # let the doomed worker flush at least once
    doomed.kill()
    doomed.join()


if __name__ == "__main__":
    main()
