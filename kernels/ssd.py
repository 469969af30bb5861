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


def _segment_sums(a: torch.Tensor) -> torch.Tensor:
    """[..., q] -> [..., q, q] with out[..., l, s] = a[s+1] + ... + a[l] for s <= l, else -inf.

    Summing masked copies (rather than subtracting two cumulative sums) keeps the exponent exact
    when the decays are large, so exp(out) is accurate for every pair.
    """
    q = a.shape[-1]
    below = torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device), diagonal=-1)
    sums = a[..., :, None].expand(*a.shape, q).masked_fill(~below, 0).cumsum(dim=-2)
    causal = torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device))
    return sums.masked_fill(~causal, -torch.inf)


def ssd_scan(x, dt, A, B, C, D, chunk_size, initial_state=None):
    """Chunked SSD scan over a sequence, starting from `initial_state`.

    Args:
        x: [b, t, h, p] inputs.
        dt: [b, t, h] step sizes, already through softplus (and any clamp).
        A: [h] negative decay rates (A = -exp(A_log)).
        B, C: [b, t, g, n] input and output projections; head i uses group i // (h // g).
        D: [h] skip weights, or None.
        chunk_size: tokens per block; any t works (the last block is padded with dt = 0).
        initial_state: [b, h, p, n] state before the first token, or None for zeros.

    Returns:
        y: [b, t, h, p] fp32 outputs.
        final_state: [b, h, p, n] fp32 state after the last token.
    """
    _check(x, dt, B, C)
    b, t, h, p = x.shape
    g, n = B.shape[2:]
    e = h // g  # heads per group
    q = chunk_size
    pad = (-t) % q
    c = (t + pad) // q

    def blocks(v: torch.Tensor, *inner: int) -> torch.Tensor:
        # [b, t, ...] -> zero-pad the time axis -> [b, c, q, *inner]; zero dt leaves padding inert
        v = F.pad(v.float(), (0, 0) * (v.dim() - 2) + (0, pad))
        return v.reshape(b, c, q, *inner)

    x, dt = x.float(), dt.float()
    xdt = blocks(x * dt[..., None], g, e, p)  # [b, c, q, g, e, p]
    a = blocks(dt * A.float(), g, e).permute(0, 1, 3, 4, 2)  # [b, c, g, e, q] log-decay per token
    Bc, Cc = blocks(B, g, n), blocks(C, g, n)  # [b, c, q, g, n]
    a_cum = a.cumsum(dim=-1)

    # 1. Within each chunk: attention-like mixing with causal decay weights.
    scores = torch.einsum("bclgn,bcsgn->bcgls", Cc, Bc)  # [b, c, g, l, s]
    weights = scores[:, :, :, None] * torch.exp(_segment_sums(a))  # [b, c, g, e, l, s]
    y = torch.einsum("bcgels,bcsgep->bclgep", weights, xdt)

    # 2. What each chunk adds to the state by its end.
    to_end = torch.exp(a_cum[..., -1:] - a_cum).permute(0, 1, 4, 2, 3)  # [b, c, q, g, e]
    chunk_states = torch.einsum("bclgn,bclgep->bcgepn", Bc, xdt * to_end[..., None])

    # 3. Carry the state across chunks (c is small: a loop costs less memory than a c x c matrix).
    state = _initial_state(initial_state, x, n).reshape(b, g, e, p, n)
    chunk_decay = torch.exp(a_cum[..., -1])  # [b, c, g, e]
    starts = []
    for i in range(c):
        starts.append(state)
        state = state * chunk_decay[:, i, :, :, None, None] + chunk_states[:, i]
    start_states = torch.stack(starts, dim=1)  # [b, c, g, e, p, n]

    # 4. The contribution of each chunk's starting state, decayed to every position.
    from_start = torch.exp(a_cum).permute(0, 1, 4, 2, 3)  # [b, c, q, g, e]
    y = y + torch.einsum("bclgn,bcgepn->bclgep", Cc, start_states) * from_start[..., None]

    y = y.reshape(b, c * q, h, p)[:, :t]
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
        state: [b, h, p, n] fp32 state, overwritten with the state after this token.
        x: [b, h, p] input.  dt: [b, h] step size (softplus'd).  A: [h].
        B, C: [b, g, n].  D: [h] or None.

    Returns:
        y: [b, h, p] fp32 output for this token.
    """
    _check(x[:, None], dt[:, None], B[:, None], C[:, None])
    b, h, p = x.shape
    g, n = B.shape[1:]
    x, dt = x.float(), dt.float()
    grouped = state.view(b, g, h // g, p, n)
    decay = torch.exp(dt * A.float()).view(b, g, h // g, 1, 1)
    update = (dt[..., None] * x).view(b, g, h // g, p, 1) * B.float().view(b, g, 1, 1, n)
    grouped.mul_(decay).add_(update)
    y = (grouped @ C.float().view(b, g, 1, n, 1)).view(b, h, p)
    if D is not None:
        y = y + D.float()[:, None] * x
    return y
