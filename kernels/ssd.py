"""The selective state-space recurrence of Mamba-2 (SSD), per head h:

    s_t = exp(dt_t * A) * s_{t-1} + dt_t * (x_t ⊗ B_t)        s ∈ R^{P×N}
    y_t = s_t C_t + D * x_t

Three levels, each checked against the one before: `ssd_scan_ref` runs the recurrence one step at
a time (the ground truth); `ssd_scan` is the chunked SSD algorithm (quadratic inside a chunk,
recurrent across chunks); a Triton kernel goes in `ssd_triton.py`. `ssd_step` advances a
decode state by one token in place. Everything accumulates in fp32 whatever the input dtype.

Shapes (b batch, t tokens, h heads, p head dim, g groups, n state size; h % g == 0 and head i
reads group i // (h // g)):

    x [b, t, h, p]   dt [b, t, h] (already softplus'd, > 0)   A [h] (negative)
    B, C [b, t, g, n]   D [h] or None   state [b, h, p, n]
"""

import torch
import torch.nn.functional as F

from kernels.dispatch import KernelError


def _check(x: torch.Tensor, dt: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> None:
    """Shapes of a scan ([b, t, ...]) or of a step (the same without t) agree."""
    heads, groups = x.shape[-2], B.shape[-2]
    if dt.shape != x.shape[:-1] or B.shape != C.shape or heads % groups:
        raise KernelError(
            f"ssd: inconsistent shapes x {tuple(x.shape)}, dt {tuple(dt.shape)}, "
            f"B {tuple(B.shape)}, C {tuple(C.shape)}"
        )


def _initial_state(state: torch.Tensor | None, x: torch.Tensor, n: int) -> torch.Tensor:
    b, _, h, p = x.shape
    if state is None:
        return x.new_zeros(b, h, p, n, dtype=torch.float32)
    return state.float()


def ssd_scan_ref(x, dt, A, B, C, D, chunk_size, initial_state=None):
    """Sequential recurrence, one token at a time: same contract as `ssd_scan` (ignores chunk_size)."""
    _check(x, dt, B, C)
    heads_per_group = x.shape[2] // B.shape[2]
    x, dt, A = x.float(), dt.float(), A.float()
    B = B.float().repeat_interleave(heads_per_group, dim=2)  # [b, t, h, n]
    C = C.float().repeat_interleave(heads_per_group, dim=2)
    state = _initial_state(initial_state, x, B.shape[-1]).clone()
    outputs = []
    for i in range(x.shape[1]):
        decay = torch.exp(dt[:, i] * A)[:, :, None, None]  # [b, h, 1, 1]
        update = (dt[:, i, :, None] * x[:, i])[..., None] * B[:, i, :, None, :]  # [b, h, p, n]
        state = decay * state + update
        outputs.append(torch.einsum("bhpn,bhn->bhp", state, C[:, i]))
    y = torch.stack(outputs, dim=1) if outputs else x.new_zeros(x.shape)
    if D is not None:
        y = y + D.float()[:, None] * x
    return y, state


# The CPU path works in blocks of at most this many tokens, whatever the model's chunk size: the
# work inside a block grows with its length (a q x q decay matrix per head) while the work across
# blocks does not, and 64 measured fastest on h-350m / h-1b shapes (4.5x faster than 256 at 512
# tokens, 6.6x at 2048). The result does not depend on the block size beyond fp32 rounding.
CPU_BLOCK = 64


def _decays(a: torch.Tensor) -> torch.Tensor:
    """[..., q] log-decays -> [..., q, q] with out[..., l, s] = exp(a[s+1] + ... + a[l]) for s <= l, else 0.

    The partial sums are differences of a float64 cumulative sum: in fp32 the difference of two
    large sums would lose the small exponents that matter (a fast decay early in a block followed by
    slow ones), in float64 it is exact to fp32 precision.
    """
    total = a.double().cumsum(dim=-1)
    return (total[..., :, None] - total[..., None, :]).float().exp_().tril_()


def ssd_scan(x, dt, A, B, C, D, chunk_size, initial_state=None):
    """Chunked SSD scan over a sequence, starting from `initial_state`.

    Args:
        x: [b, t, h, p] inputs.
        dt: [b, t, h] step sizes, already through softplus (and any clamp).
        A: [h] negative decay rates (A = -exp(A_log)).
        B, C: [b, t, g, n] input and output projections; head i uses group i // (h // g).
        D: [h] skip weights, or None.
        chunk_size: the largest block; this CPU path uses blocks of min(chunk_size, CPU_BLOCK)
            tokens. Any t works (the last block is padded with dt = 0).
        initial_state: [b, h, p, n] state before the first token, or None for zeros.

    Returns:
        y: [b, t, h, p] fp32 outputs.
        final_state: [b, h, p, n] fp32 state after the last token.
    """
    _check(x, dt, B, C)
    b, t, h, p = x.shape
    g, n = B.shape[2:]
    e = h // g  # heads per group
    q = min(chunk_size, CPU_BLOCK)
    pad = (-t) % q
    c = (t + pad) // q

    def blocks(v: torch.Tensor) -> torch.Tensor:
        # [b, t, ...] -> fp32, zero-padded in time to c * q (zero dt leaves the padding inert)
        return F.pad(v.float(), (0, 0) * (v.dim() - 2) + (0, pad))

    x, dt = x.float(), dt.float()
    xdt = blocks(x * dt[..., None]).view(b, c, q, g, e, p).permute(0, 1, 3, 4, 2, 5)  # [b, c, g, e, q, p]
    a = blocks(dt * A.float()).view(b, c, q, g, e).permute(0, 1, 3, 4, 2)  # [b, c, g, e, q] log-decays
    Bc = blocks(B).view(b, c, q, g, n).transpose(2, 3)  # [b, c, g, q, n]
    Cc = blocks(C).view(b, c, q, g, n).transpose(2, 3)
    a_cum = a.cumsum(dim=-1)

    # 1. Within each block: attention-like mixing, C_l . B_s weighted by the decay from s to l.
    weights = _decays(a).mul_((Cc @ Bc.transpose(-1, -2))[:, :, :, None])  # [b, c, g, e, l, s]
    y = weights @ xdt  # [b, c, g, e, q, p]

    # 2. What each block adds to the state by its end: sum_s decay(s -> end) x_s dt_s B_s^T.
    to_end = torch.exp(a_cum[..., -1:] - a_cum)[..., None]  # [b, c, g, e, q, 1]
    inputs = (xdt * to_end).transpose(-1, -2).reshape(b, c, g, e * p, q)
    block_states = (inputs @ Bc).view(b, c, g, e, p, n)

    # 3. Carry the state across blocks (a loop over c: less memory than a c x c decay matrix).
    state = _initial_state(initial_state, x, n).view(b, g, e, p, n)
    block_decay = torch.exp(a_cum[..., -1])[..., None, None]  # [b, c, g, e, 1, 1]
    starts = x.new_empty(b, c, g, e, p, n)
    for i in range(c):
        starts[:, i] = state
        state = torch.addcmul(block_states[:, i], state, block_decay[:, i])

    # 4. Each block's starting state read out by C and decayed to every position of the block.
    from_start = (Cc @ starts.view(b, c, g, e * p, n).transpose(-1, -2)).view(b, c, g, q, e, p)
    from_start = from_start * torch.exp(a_cum).transpose(-1, -2)[..., None]
    y = y.permute(0, 1, 4, 2, 3, 5) + from_start.permute(0, 1, 3, 2, 4, 5)  # both [b, c, q, g, e, p]

    y = y.reshape(b, c * q, h, p)[:, :t]  # [b, c, q, g, e, p] -> [b, t, h, p]
    if D is not None:
        y = y + D.float()[:, None] * x
    return y, state.reshape(b, h, p, n)


def ssd_step_ref(state, x, dt, A, B, C, D):
    """One token through `ssd_scan_ref`: same contract as `ssd_step`."""
    y, new_state = ssd_scan_ref(x[:, None], dt[:, None], A, B[:, None], C[:, None], D, 1, state)
    state.copy_(new_state)
    return y[:, 0]


def ssd_step(state, x, dt, A, B, C, D):
    """Advance the recurrence by one token, updating `state` in place.

    Args:
        state: [b, h, p, n] fp32 contiguous state, overwritten with the state after this token.
        x: [b, h, p] input.  dt: [b, h] step size (softplus'd).  A: [h].
        B, C: [b, g, n].  D: [h] or None.

    Returns:
        y: [b, h, p] fp32 output for this token.
    """
    _check(x, dt, B, C)
    b, h, p = x.shape
    g, n = B.shape[1:]
    rows = h // g * p  # state rows per group
    x, dt = x.float(), dt.float()
    # Two passes over the state, no temporary of its size: decay it, then add (dt x) ⊗ B in place.
    state.mul_(torch.exp(dt * A.float()).view(b, h, 1, 1))
    grouped = state.view(b * g, rows, n)
    grouped.addcmul_((x * dt.unsqueeze(-1)).view(b * g, rows, 1), B.float().reshape(b * g, 1, n))
    # The read-out as one matrix-vector product per group: a batched matmul here runs
    # 10x slower than the BLAS mv on h-350m's [1536, 128] state.
    C = C.float().reshape(b * g, n)
    if b * g == 1:
        y = torch.mv(grouped[0], C[0])
    else:
        y = x.new_empty(b * g, rows)
        for i in range(b * g):
            torch.mv(grouped[i], C[i], out=y[i])
    y = y.view(b, h, p)
    if D is not None:
        y.addcmul_(D.unsqueeze(-1), x)  # the op promotes a 16-bit D itself (no separate cast op)
    return y
