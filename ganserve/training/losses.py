"""GAN losses: non-saturating logistic (default), WGAN-GP, and the R1 penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("logistic", "wgan-gp")


def d_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "logistic":   # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), from logits
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "wgan-gp":    # critic: E[D(fake)] - E[D(real)], plus drift to keep D(real) near 0
        return fake_logits.mean() - real_logits.mean() + 1e-3 * real_logits.square().mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    if kind == "logistic":   # non-saturating: -log sigmoid(D(G(z)))
        return F.softplus(-fake_logits).mean()
    if kind == "wgan-gp":
        return -fake_logits.mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor | None
                     ) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al.): (||grad D(x_hat)|| - 1)^2 on real/fake interpolates."""
    eps = torch.rand(real.shape[0], 1, 1, 1).to(real.device)    # drawn on the CPU RNG
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    out = D(x_hat, c)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


def r1_penalty(D, real: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """R1 (Mescheder et al.): ||grad D(x)||^2 on real images; scale by gamma/2 outside."""
    x = real.detach().requires_grad_(True)
    out = D(x, c)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()
