import torch
import triton
import triton.language as tl


@triton.jit
def _apply_log_scaling_tau_kernel(
    x_ptr,
    tau_ptr,  # [rows] fp32 (flattened per-row scale)
    out_ptr,  # [rows, inner] contiguous, same dtype as x
    x_row_stride,
    inner,
    total,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    row = offs // inner
    col = offs % inner
    x = tl.load(x_ptr + row * x_row_stride + col, mask=mask).to(tl.float32)
    tau = tl.load(tau_ptr + row, mask=mask)
    y = x * tau
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


def apply_log_scaling_tau(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError("removed by slim: never run in any recording")
