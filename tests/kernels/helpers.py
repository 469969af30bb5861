"""Random inputs for the kernel tests, with the value ranges the real models produce."""

import torch


def ssd_inputs(b, t, h, p, g, n, dtype, seed=0):
    """x, dt, A, B, C, D for an SSD scan; A and dt span slow to fast decays (exp(dt*A) in 1e-3..1)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, h, p, generator=gen).to(dtype)
    dt = torch.nn.functional.softplus(torch.randn(b, t, h, generator=gen) * 2 - 1).to(dtype)
    A = -torch.exp(torch.empty(h).uniform_(-4, 1.5, generator=gen))
    B = torch.randn(b, t, g, n, generator=gen).to(dtype)
    C = torch.randn(b, t, g, n, generator=gen).to(dtype)
    D = torch.empty(h).uniform_(-2, 2, generator=gen)
    return x, dt, A, B, C, D


def close(actual: torch.Tensor, expected: torch.Tensor, rel: float) -> None:
    """max|actual - expected| <= rel * max|expected| (the project's definition of relative error)."""
    error = (actual.float() - expected.float()).abs().max().item()
    scale = expected.float().abs().max().item()
    assert error <= rel * scale, f"max error {error:.3g} exceeds {rel:g} x max|expected| {scale:.3g}"
