#!/usr/bin/env python3
"""Pretrained-weight fixtures for tests/Posteriors.Runtime.Tests/Serialization/WeightsFileTests.cs.

    python3 scripts/weight-fixtures.py              # writes tests/.../Fixtures/weights/tiny.{pt,safetensors,json}
    python3 scripts/weight-fixtures.py check FILE   # reads a safetensors file (e.g. one the C# side wrote) with torch

Needs only PyTorch (Debian: apt-get install python3-torch). Debian 12 has no safetensors package, so the safetensors
file is written here with struct and json, exactly as the format specifies, and read back through torch to check it.
CI never runs this script: its output is committed.
"""
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
FROM_NAME = {v: k for k, v in DTYPES.items()}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Posteriors.Runtime.Tests", "Serialization",
                   "Fixtures", "weights")


class Tiny(torch.nn.Module):
    """The architecture of the C# test's module: conv(1→2, 3×3) on 4×4 images, then a linear layer 8→3."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=FROM_NAME[e["dtype"]]) if end > begin else torch.empty(0)
        out[name] = t.reshape(e["shape"])
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        for name, t in read_safetensors(sys.argv[2]).items():
            print(f"{name} {t.dtype} {list(t.shape)} sum={t.double().sum().item():.6g}")
        return
    torch.manual_seed(0)
    model = Tiny()
    os.makedirs(OUT, exist_ok=True)
    state = model.state_dict()
    torch.save(state, os.path.join(OUT, "tiny.pt"))
    safe = dict(state)
    safe["extra.f64"] = torch.arange(6, dtype=torch.float64).reshape(2, 3) / 7
    write_safetensors(os.path.join(OUT, "tiny.safetensors"), safe)
    back = read_safetensors(os.path.join(OUT, "tiny.safetensors"))
    assert all(torch.equal(back[k], v) for k, v in safe.items())
    x = torch.linspace(-1, 1, 2 * 16).reshape(2, 1, 4, 4)
    expected = {"tensors": {k: {"shape": list(v.shape), "values": v.flatten().tolist()} for k, v in safe.items()},
                "input": x.flatten().tolist(), "output": model(x).detach().flatten().tolist()}
    with open(os.path.join(OUT, "tiny.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
