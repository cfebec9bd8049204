#!/usr/bin/env python3
"""An independent last-layer Laplace computed densely in PyTorch, to check `posteriors laplace --layers last` against.

For the study's CNN (scripts/train-fmnist-cnn.py) and its state_dict, on the first N training images:
  - the exact GGN of the last layer, Σᵢ Hᵢ ⊗ φᵢφᵢᵀ (Hᵢ = diag(pᵢ) − pᵢpᵢᵀ, φᵢ the features with a 1 appended), [1290, 1290];
  - its KFAC approximation (Σᵢ Hᵢ) ⊗ (1/N) Σᵢ φᵢφᵢᵀ;
  - for each, the Laplace log evidence over a fine grid of the prior precision δ (prior N(0, δ⁻¹ I) on fc2's weight and
    bias, the likelihood summed over the N images) and its maximiser;
  - the GLM predictive on the 10,000 test images at that δ (and at δ from --delta), three ways: the per-logit and the
    pairwise multiclass probit and Monte Carlo (2,000 draws), with accuracy, NLL and ECE (15 equal-width bins), next to
    the MAP's.

    python3 scripts/laplace-reference.py MAP.pt [--train-size 60000] [--delta 1 ...]

Needs PyTorch (Debian: python3-torch) and the data set (dataset-fashion-mnist).
"""
import argparse
import importlib.util
import math
import os

import torch
import torch.nn.functional as F

_spec = importlib.util.spec_from_file_location("train", os.path.join(os.path.dirname(__file__), "train-fmnist-cnn.py"))
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)


def features(model, x):
    with torch.no_grad():
        h = F.max_pool2d(F.relu(model.conv1(x)), 2)
        h = F.max_pool2d(F.relu(model.conv2(h)), 2)
        phi = F.relu(model.fc1(h.flatten(1)))
    phi = phi.double()
    return torch.cat([phi, torch.ones(phi.shape[0], 1, dtype=phi.dtype)], 1)


def ece(probs, labels, bins=15):
    conf, pred = probs.max(1)
    correct = (pred == labels).double()
    total = 0.0
    edges = torch.linspace(0, 1, bins + 1)
    for b in range(bins):
        inside = (conf > edges[b]) & (conf <= edges[b + 1]) if b > 0 else (conf <= edges[1])
        if inside.any():
            total += inside.sum().item() * abs(correct[inside].mean().item() - conf[inside].mean().item())
    return total / labels.shape[0]


def metrics(probs, labels):
    return ((probs.argmax(1) == labels).double().mean().item(),
            -probs.clamp_min(1e-12).log().gather(1, labels[:, None]).mean().item(), ece(probs, labels))


def diagonal_probit(mu, cov):
    return (mu / (1 + math.pi / 8 * cov.diagonal(dim1=1, dim2=2)).sqrt()).softmax(1)


def pairwise_probit(mu, cov):
    # The binary probit of every difference: p_k ∝ 1 / Σ_j exp(−(μ_k − μ_j) / √(1 + π/8 · Var(f_k − f_j))).
    v = cov.diagonal(dim1=1, dim2=2)
    var = v[:, :, None] + v[:, None, :] - 2 * cov
    z = (mu[:, :, None] - mu[:, None, :]) / (1 + math.pi / 8 * var).sqrt()
    p = 1 / torch.exp(-z).sum(2)
    return p / p.sum(1, keepdim=True)


def monte_carlo(mu, cov, draws):
    g = torch.Generator().manual_seed(0)
    chol = torch.linalg.cholesky(cov + 1e-9 * torch.eye(cov.shape[1], dtype=cov.dtype))
    out = []
    for m, c in zip(mu.split(500), chol.split(500)):
        z = torch.randn(draws, *m.shape, generator=g, dtype=m.dtype)
        out.append((m + torch.einsum("bkl,nbl->nbk", c, z)).softmax(2).mean(0))
    return torch.cat(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--delta", type=float, nargs="*", default=[], help="further prior precisions to evaluate")
    args = parser.parse_args()
    model = train.SmallCnn()
    model.load_state_dict(torch.load(args.weights))
    model.eval()
    # The network runs in single precision, as trained; everything after the features in double.
    x = train.idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)[:args.train_size]
    y = train.idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).long()[:args.train_size]
    xt = train.idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    yt = train.idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).long()
    phi = torch.cat([features(model, x[i:i + 2000]) for i in range(0, x.shape[0], 2000)])
    phit = torch.cat([features(model, xt[i:i + 2000]) for i in range(0, xt.shape[0], 2000)])
    w = torch.cat([model.fc2.weight, model.fc2.bias[:, None]], 1).detach().double()          # [K, D]
    k, d = w.shape
    n = phi.shape[0]
    logits = phi @ w.t()
    p = logits.softmax(1)
    log_lik = logits.log_softmax(1).gather(1, y[:, None]).sum().item()
    # Exact GGN, index (k, j) -> k·D + j: Σᵢ Hᵢ[k, l] φᵢ[j] φᵢ[m].
    ggn = torch.zeros(k, d, k, d, dtype=torch.float64)
    for a in range(k):
        for b in range(k):
            h = p[:, a] * (float(a == b) - p[:, b])
            ggn[a, :, b, :] = (phi * h[:, None]).t() @ phi
    ggn = ggn.reshape(k * d, k * d)
    g_factor = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]).sum(0)
    a_factor = phi.t() @ phi / n
    kfac = torch.kron(g_factor, a_factor)
    norm = (w * w).sum().item()
    logits_t = phit @ w.t()
    probs_map = logits_t.softmax(1)
    print(f"N = {n}, log p(D | θ̂) = {log_lik:.2f}, ‖θ̂_fc2‖² = {norm:.3f}, MAP acc/NLL/ECE = "
          + "{:.4f} / {:.4f} / {:.4f}".format(*metrics(probs_map, yt)))
    print(f"relative Frobenius error of KFAC against the exact GGN: {((kfac - ggn).norm() / ggn.norm()).item():.3f}")
    for name, curvature in (("dense GGN", ggn), ("KFAC", kfac)):
        lam, q = torch.linalg.eigh((curvature + curvature.t()) / 2)
        lam = lam.clamp_min(0)

        def evidence(delta):
            return log_lik - 0.5 * delta * norm + 0.5 * k * d * math.log(delta) - 0.5 * (lam + delta).log().sum().item()

        grid = [10 ** (e / 100) for e in range(-300, 601)]
        best = max(grid, key=evidence)
        gamma = (lam / (lam + best)).sum().item()
        print(f"{name}: evidence-maximising δ = {best:.4g} (log Z {evidence(best):.2f}; δ‖θ̂‖² = {best * norm:.1f}, "
              f"effective parameters {gamma:.1f})")
        # J = I_K ⊗ φᵀ, so Cov(f_k, f_l) = φᵀ Σ[(k, ·), (l, ·)] φ with Σ = Q diag(1/(λ + δ)) Qᵀ.
        for delta in [best] + args.delta:
            sigma = (q / (lam + delta)) @ q.t()
            s = sigma.reshape(k, d, k, d).permute(1, 0, 2, 3).reshape(d, k * k * d)
            cov = torch.cat([((c @ s).reshape(-1, k, k, d) * c[:, None, None, :]).sum(3) for c in phit.split(500)])
            for label, probs in (("probit (per-logit variance)", diagonal_probit(logits_t, cov)),
                                 ("probit (pairwise differences)", pairwise_probit(logits_t, cov)),
                                 ("Monte Carlo, 2,000 draws", monte_carlo(logits_t, cov, 2000))):
                print(f"  δ = {delta:.4g}: {label} acc/NLL/ECE = " + "{:.4f} / {:.4f} / {:.4f}".format(*metrics(probs, yt)))


if __name__ == "__main__":
    main()
