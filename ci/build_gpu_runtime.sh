#!/usr/bin/env bash
# Builds what an air-gapped Hopper host needs beside its image (Python 3.12, torch 2.11.0+cu130,
# triton 3.6.0) to serve sglang 0.5.17, packed small enough to carry to the device:
#   .carry/deps.tar.xz             third-party runtime, unpacks to site/
#   .carry/sglang-upstream.tar.xz  the pristine pinned sglang (from `slim fetch`), unpacks to site/
#   .carry/sglang-test.tar.xz      its sglang/test (0.3 MB), left out of the above: `--kits` and the
#                                  operator tools dsv3_fp8_tp1_companions records need it
#   .carry/wheels/                 slim's own tools the image lacks (installed to /opt/rt/tools)
# Adapted from the team's shared reference recipe (shared/gpu-runtime/build.sh); `slim bundle`
# will replace the third-party half with a coverage-pruned one.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.carry; W=.rt/wheels; ST=.rt/stage
mkdir -p "$OUT" "$W"; rm -rf "$ST"; mkdir -p "$ST/deps/site" "$ST/up/site"
PLAT="--python-version 3.12 --implementation cp --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64
 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
 --platform manylinux2014_x86_64 --platform any"
PINS=(
  "sglang-kernel==0.4.5" "sgl-deep-gemm==0.1.5.post1" "flashinfer-python==0.6.15.post1"
  # The image's transformers 5.17 breaks a config registration sglang 0.5.17 makes.
  "transformers==5.12.1" "tokenizers==0.22.2" "fastapi==0.115.12" "starlette==0.46.2"
  pydantic pydantic-core annotated-types typing-inspection annotated-doc uvicorn orjson pyzmq msgspec
  setproctitle pybase64 partial-json-parser python-multipart interegular "openai==2.6.1" jiter distro
  sniffio "openai-harmony==0.0.4" "xgrammar==0.2.1" "apache-tvm-ffi==0.1.11" gguf easydict
  torch_memory_saver compressed-tensors loguru llguidance dill zstandard watchfiles jsonschema
  jsonschema-specifications referencing rpds-py ollama soundfile cffi pycparser
  # sglang/utils.py imports IPython.display at module level.
  ipython traitlets decorator jedi parso matplotlib-inline pexpect ptyprocess prompt-toolkit wcwidth
  stack-data executing asttokens pure-eval ipython-pygments-lexers
)
python3 -m pip download -q --no-deps --only-binary=:all: $PLAT -d "$W" "${PINS[@]}"
for whl in "$W"/*.whl; do
  case "$(basename "$whl")" in
    # flash_ops (FA3, 1.1 GB) cannot be carried; sm100 kernels cannot run on Hopper.
    sglang_kernel-*) unzip -q -o "$whl" -d "$ST/deps/site" -x 'sgl_kernel/flash_ops.abi3.so' 'sgl_kernel/sm100/*' 'sgl_kernel/infllm_ops*' ;;
    *) unzip -q -o "$whl" -d "$ST/deps/site" ;;
  esac
done
rm -rf "$ST/deps/site/xgrammar/lib"  # a static archive for C++ embedding, never loaded
# Never imported while serving (coverage_db: not in any process's third-party imports), and
# outside our surface: IPython's interactive-terminal stack (sglang imports only IPython.display),
# and the llguidance grammar backend (xgrammar is the default). Dropping them keeps a device call
# under its 64 MiB.
(cd "$ST/deps/site" && rm -rf jedi parso prompt_toolkit wcwidth pexpect ptyprocess stack_data executing \
  asttokens pure_eval llguidance)
# zstandard loads its C backend; the cffi backend is only a fallback for when that fails.
rm -f "$ST"/deps/site/zstandard/_cffi.*.so "$ST"/deps/site/zstandard/backend_cffi.py
# transformers: only the model folders sglang 0.5.17 imports while serving DeepSeek.
KEEP="auto deepseek_v3 deepseek_v2 apertus clip cohere cohere2 encoder_decoder ernie4_5_moe exaone4 gemma2 gemma3 gemma3n gemma4 glm4v glm4v_moe glm_ocr glmasr gpt2 gpt_bigcode gpt_oss gptj granite granitemoeshared lfm2 lfm2_vl llama llama4 llava mellum mistral mistral3 mixtral mllama nemotron_h olmo opt parakeet persimmon phi phi3 pixtral qwen2 qwen2_5_vl qwen2_audio qwen2_vl qwen3 qwen3_moe siglip siglip2 starcoder2 vitdet whisper"
for d in "$ST"/deps/site/transformers/models/*/; do
  case " $KEEP " in *" $(basename "$d") "*) ;; *) rm -rf "$d" ;; esac
done
UP=$(.venv/bin/python -c 'from slim.upstream import fetch; print(fetch())')
tar -C "$UP" -cf - --exclude=sglang/multimodal_gen --exclude=sglang/test --exclude=__pycache__ \
  --transform 's,^,site/,' sglang sglang-0.5.17.dist-info | xz -9 -T0 > "$OUT/sglang-upstream.tar.xz"
tar -C "$UP" -cf - --exclude=__pycache__ --transform 's,^,site/,' sglang/test | xz -9 -T0 > "$OUT/sglang-test.tar.xz"
tar -C "$ST/deps" -cf - site | xz -9 -T0 > "$OUT/deps.tar.xz"
# slim's own tools on the device (gpu_session.sh installs these into /opt/rt/tools): libcst for
# `slim apply` there, and annotated-doc, which newer typer needs and a pruned bundle may lack.
mkdir -p "$OUT/wheels"
python3 -m pip download -q --no-deps --only-binary=:all: $PLAT -d "$OUT/wheels" "libcst==1.9.0" "annotated-doc==0.0.7"
ls -la "$OUT" "$OUT/wheels"
