#!/usr/bin/env python3
"""KFAC's eigenvalues against the corrected ones (EKFAC), per layer, from a `posteriors laplace --eigenvalues corrected`
run's kfac.state: λ = λ_G λ_A (A = the input factor / N, G the output-gradient factor) and s = the corrections · N / N_s,
both in the factors' eigenbasis. Prints their traces, the distribution of s/λ, and for the prior precisions δ of each
metrics.json given the posterior's variance trace Σ 1/(λ + δ) against Σ 1/(s + δ) and the share of directions where the
likelihood's curvature is below δ (where the prior, not the data, sets the width).

    python3 scripts/kfac-eigenvalues.py RUN/kfac.state [RUN/metrics.json ...]

Needs PyTorch (Debian: python3-torch). Reads the state file format directly (StateFile: .NET BinaryWriter fields).
"""
import json
import struct
import sys

import torch

DTYPES = {3: torch.int32, 4: torch.int64, 6: torch.float32, 7: torch.float64}


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        self.at += n
        return self.data[self.at - n:self.at]

    def int32(self):
        return struct.unpack("<i", self.take(4))[0]

    def int64(self):
        return struct.unpack("<q", self.take(8))[0]

    def string(self):
        length = shift = 0
        while True:                                     # 7-bit encoded length, then UTF-8
            byte = self.take(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return self.take(length).decode()

    def tensor(self):
        dtype, rank = self.take(1)[0], self.int32()
        shape = [self.int64() for _ in range(rank)]
        return torch.frombuffer(bytearray(self.take(self.int64())), dtype=DTYPES[dtype]).reshape(shape)


def load(path):
    r = Reader(open(path, "rb").read())
    r.take(8)                                           # "PSTSTATE"
    r.int32()                                           # format version
    kind, version, fields = r.string(), r.int32(), {}
    for _ in range(r.int32()):
        name, tag = r.string(), r.take(1)[0]
        if tag == 1:
            fields[name] = r.int64()
        elif tag == 2:
            fields[name] = struct.unpack("<d", r.take(8))[0]
        elif tag == 3:
            fields[name] = r.string()
        elif tag == 4:
            fields[name] = r.tensor()
        else:
            fields[name] = {r.string(): r.tensor() for _ in range(r.int32())}
    return kind, version, fields


def main():
    kind, version, state = load(sys.argv[1])
    if kind != "KfacLaplace" or version < 3 or state["correction_count"] == 0:
        sys.exit(f"{sys.argv[1]}: a {kind} state of version {version} without eigenvalue corrections")
    deltas = [(path, json.load(open(path))["prior_precision"]) for path in sys.argv[2:]]
    n, ns = state["count"], state["correction_count"]
    print(f"{n} data in the factors, {ns} in the corrections")
    for key in state["factor_g"]:
        a, g = state["factor_a"][key].double() / n, state["factor_g"][key].double()
        la = torch.linalg.eigvalsh((a + a.T) / 2).clamp_min(0)
        lg = torch.linalg.eigvalsh((g + g.T) / 2).clamp_min(0)
        lam = (lg[:, None] * la[None, :]).flatten()
        s = (state["eigenvalue_correction"][key].double() * n / ns).flatten()
        ratio = s / lam.clamp_min(1e-30)
        print(f"{key}: {lam.numel()} directions; trace λ {lam.sum():.4g}, trace s {s.sum():.4g}; s/λ median {ratio.median():.3g} "
              f"(quartiles {ratio.quantile(0.25):.3g}, {ratio.quantile(0.75):.3g}), s > λ in {(s > lam).double().mean() * 100:.1f} %")
        for path, delta in deltas:
            d = delta[key]
            print(f"  δ {d:.4g} ({path}): Σ 1/(λ+δ) {(1 / (lam + d)).sum():.4g}, Σ 1/(s+δ) {(1 / (s + d)).sum():.4g}; "
                  f"λ < δ in {(lam < d).double().mean() * 100:.1f} %, s < δ in {(s < d).double().mean() * 100:.1f} % "
                  f"of the directions, {((1 / (s + d))[s < d].sum() / (1 / (s + d)).sum()) * 100:.1f} % of Σ 1/(s+δ)")


if __name__ == "__main__":
    main()
