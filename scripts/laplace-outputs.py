#!/usr/bin/env python3
"""Predictives read from `posteriors laplace`'s outputs.safetensors (the linearised predictive's Gaussian N(μ, Σ) over the
logits of every reported test image, at temperature 1), without another pass through the network:

  noise   Monte Carlo with 100 draws over 8 seeds and 1,000 draws over 3 seeds: the spread of NLL and ECE;
  closed  the closed forms (pairwise and per-logit probit, each with λ = π/8 and 3/π², the per-logit one also on the
          Gaussian centred off the shared-shift direction 1, the Laplace bridge) against Monte Carlo with 3,000 draws;
  temp    ECE's sensitivity to the number of bins, and Monte Carlo (300 draws) with the covariance × T over a grid of T.

ECE: 15 equal-width bins (b/B, (b+1)/B] of the top-class probability, as the library computes it.

    python3 scripts/laplace-outputs.py RUN/outputs.safetensors [noise|closed|temp|all]

Needs PyTorch (Debian: python3-torch).
"""
import json
import math
import struct
import sys

import torch


def load(path):
    """A safetensors file as a dict of tensors (read directly: the format is a JSON header and raw little-endian data)."""
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[8 + size + start:8 + size + end]), dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
    return out


def ece(p, y, bins=15, right_open=False):
    conf, pred = p.max(1)
    correct = (pred == y).double()
    b = (conf * bins).floor().long().clamp(0, bins - 1) if right_open else (conf * bins).ceil().long().clamp(1, bins) - 1
    total = 0.0
    for i in range(bins):
        m = b == i
        if m.any():
            total += m.sum().item() * abs(correct[m].mean().item() - conf[m].double().mean().item())
    return total / len(y)


def metrics(p, y):
    p = p.double().clamp_min(1e-12)
    return (p.argmax(1) == y).double().mean().item(), -p.gather(1, y[:, None]).log().mean().item(), ece(p, y)


def monte_carlo(mu, cov, draws, seed, chunk=500):
    g = torch.Generator().manual_seed(seed)
    k = mu.shape[1]
    lower = torch.linalg.cholesky(cov + torch.eye(k, dtype=cov.dtype) * cov.diagonal(0, 1, 2).max() * 1e-6).float()
    out = []
    for s in range(0, len(mu), chunk):
        m, l = mu[s:s + chunk].float(), lower[s:s + chunk]
        acc = torch.zeros_like(m)
        for d0 in range(0, draws, 250):
            d = min(250, draws - d0)
            xi = torch.randn(d, len(m), k, 1, generator=g)
            acc += (m[None] + (l[None] @ xi).squeeze(-1)).softmax(2).sum(0)
        out.append(acc.double() / draws)
    return torch.cat(out)


def centred(mu, cov):
    """The Gaussian projected off the direction 1 (a shift of every logit alike), which the softmax ignores."""
    k = mu.shape[1]
    p = torch.eye(k, dtype=cov.dtype) - 1.0 / k
    return mu @ p, p @ cov @ p


def pairwise(mu, cov, lam=math.pi / 8):
    var = cov.diagonal(0, 1, 2)
    dv = (var[:, :, None] + var[:, None, :] - 2 * cov).clamp_min(0)
    z = (mu[:, :, None] - mu[:, None, :]) / (1 + lam * dv).sqrt()
    return (-(-z).logsumexp(2)).softmax(1)


def per_logit(mu, cov, lam=math.pi / 8):
    return (mu / (1 + lam * cov.diagonal(0, 1, 2)).sqrt()).softmax(1)


def laplace_bridge(mu, cov):
    """Hobbhahn et al.'s Dirichlet from the diagonal: α_k = (1 − 2/K + e^{μ_k} Σ_l e^{−μ_l} / K²) / Σ_kk, mean α/Σα."""
    k = mu.shape[1]
    alpha = (1 - 2.0 / k + mu.exp() / k ** 2 * (-mu).exp().sum(1, keepdim=True)) / cov.diagonal(0, 1, 2)
    return alpha / alpha.sum(1, keepdim=True)


def main():
    outputs = load(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "all"
    mu, cov, y = outputs["mean"].double(), outputs["covariance"].double(), outputs["labels"].long()
    print(f"{len(y)} images; mean output variance {cov.diagonal(0, 1, 2).mean():.3f} (centred {centred(mu, cov)[1].diagonal(0, 1, 2).mean():.3f})")

    def row(name, p, ref=None):
        a, n, e = metrics(p, y)
        error = ""
        if ref is not None:
            gap = p.double().clamp_min(1e-12).gather(1, y[:, None]).log() - ref.clamp_min(1e-12).gather(1, y[:, None]).log()
            error = f"  mean |Δ log p(y)| against Monte Carlo {gap.abs().mean():.4f}"
        print(f"{name:44s} acc {a * 100:.2f}  NLL {n:.4f}  ECE {e * 100:.2f} (half-open bins {ece(p.double(), y, right_open=True) * 100:.2f}){error}")

    row("map", mu.softmax(1))
    reference = None
    if mode in ("all", "closed", "temp"):
        reference = monte_carlo(mu, cov, 3000, 12345)
        row("Monte Carlo, 3,000 draws", reference)
    if mode in ("all", "noise"):
        for draws, seeds in ((100, range(8)), (1000, range(3))):
            runs = [metrics(monte_carlo(mu, cov, draws, s), y) for s in seeds]
            nll = torch.tensor([r[1] for r in runs])
            e = torch.tensor([r[2] for r in runs]) * 100
            print(f"Monte Carlo, {draws} draws, {len(runs)} seeds: NLL {nll.mean():.4f} ± {nll.std():.4f} [{nll.min():.4f}, {nll.max():.4f}]; "
                  f"ECE {e.mean():.2f} ± {e.std():.2f} % [{e.min():.2f}, {e.max():.2f}]")
    if mode in ("all", "closed"):
        cm, cc = centred(mu, cov)
        row("pairwise probit (π/8)", pairwise(mu, cov), reference)
        row("pairwise probit (3/π²)", pairwise(mu, cov, 3 / math.pi ** 2), reference)
        row("per-logit probit (π/8)", per_logit(mu, cov), reference)
        row("per-logit probit (π/8), centred", per_logit(cm, cc), reference)
        row("per-logit probit (3/π²), centred", per_logit(cm, cc, 3 / math.pi ** 2), reference)
        row("Laplace bridge, centred", laplace_bridge(cm, cc), reference)
    if mode in ("all", "temp"):
        for name, p in (("map", mu.softmax(1)), ("Monte Carlo, 3,000 draws", reference)):
            print(f"{name}: ECE with 10 / 15 / 20 / 30 bins " + " / ".join(f"{ece(p.double(), y, b) * 100:.2f}" for b in (10, 15, 20, 30)) + " %")
        for t in (0.25, 0.5, 0.71, 1, 1.41, 2, 2.83, 4):
            row(f"Monte Carlo, 300 draws, T = {t}", monte_carlo(mu, cov * t, 300, 7))


if __name__ == "__main__":
    main()
