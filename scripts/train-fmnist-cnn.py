#!/usr/bin/env python3
"""Trains the study's CNN (SmallCnn: conv 32, conv 64, dense 128) on Fashion-MNIST with PyTorch, the study's MAP recipe
(AdamW lr 1e-3 without weight decay on mean cross-entropy + ‖θ‖²/(2N), the N(0, 1) prior; batch 128; 10 epochs), and
saves its state_dict: pretrained weights for `posteriors laplace --weights`.

    python3 scripts/train-fmnist-cnn.py OUT.pt [--epochs 10] [--train-size 60000] [--data /usr/share/datasets/fashion-mnist]

Needs PyTorch (Debian: apt-get install python3-torch) and the data set (apt-get install dataset-fashion-mnist).
"""
import argparse
import gzip
import os
import struct

import torch
import torch.nn.functional as F


class SmallCnn(torch.nn.Module):
    def __init__(self, classes=10, c1=32, c2=64, hidden=128):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = torch.nn.Linear(c2 * 7 * 7, hidden)
        self.fc2 = torch.nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    (magic,) = struct.unpack(">I", raw[:4])
    dims = struct.unpack(">" + "I" * (magic & 0xFF), raw[4:4 + 4 * (magic & 0xFF)])
    return torch.frombuffer(bytearray(raw[4 + 4 * len(dims):]), dtype=torch.uint8).reshape(dims)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-size", type=int, default=60000, help="the first N images of the training set")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    y = idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).long()
    x, y = x[:args.train_size], y[:args.train_size]
    xt = idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).float().div(255).unsqueeze(1)
    yt = idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).long()
    model = SmallCnn()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0)
    n = x.shape[0]
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        for i in range(0, n - 127, 128):
            b = order[i:i + 128]
            prior = sum((p * p).sum() for p in model.parameters()) / (2 * n)
            loss = F.cross_entropy(model(x[b]), y[b]) + prior
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = torch.cat([model(xt[i:i + 1000]) for i in range(0, xt.shape[0], 1000)])
            print(f"epoch {epoch + 1}: test accuracy {(logits.argmax(1) == yt).float().mean():.4f}, "
                  f"NLL {F.cross_entropy(logits, yt):.4f}", flush=True)
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
