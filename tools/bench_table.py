#!/usr/bin/env python3
"""Runs `recur bench --json` on each benchmark package and prints one table.

usage: bench_table.py RECUR PACKAGE_DIR [extra recur bench options...]

Decode is shown against the bandwidth bound recur measures in the same run (read bandwidth / weight
bytes of the decoder graph), prefill and decode against the Hugging Face eager PyTorch figures quoted
in docs/DESIGN.md's performance targets (prompt 128, then 64 greedy steps; not rerun here).
"""
import json
import subprocess
import sys

# model folder -> (label, HF eager prefill tokens/s, HF eager decode tokens/s), from DESIGN.md (None: not measured)
MODELS = [
    ("rwkv-169m", "RWKV-4 169M", 419, 21),
    ("mamba-130m", "Mamba 130M", 207, 18),
    ("mamba2-130m", "Mamba-2 130M", None, None),
    ("falcon-mamba-130m", "Falcon-Mamba 130M", None, None),
    ("gemma-46m", "Gemma 46M", 1414, 56),
    ("recurrent-gemma-35m", "RecurrentGemma 35M", 1448, 53),
    ("jamba-tiny-306m", "Jamba 306M", None, None),
    ("switch-105m", "Switch 105M", 2043, 61),
]


def ratio(ours, theirs):
    return "n/a" if theirs is None else f"{ours / theirs:.2f}"


def main():
    recur, packages, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []
    for folder, label, hf_prefill, hf_decode in MODELS:
        cmd = [recur, "bench", f"{packages}/{folder}", "--prompt-length", "128", "--new-tokens", "64", "--json", *extra]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        d = json.loads(out)
        rows.append((label, d, hf_prefill, hf_decode))
        print(f"  {label}: done", file=sys.stderr)
    header = ("model", "weights MiB", "prefill tok/s", "x HF", "decode tok/s", "x HF", "GB/s", "bound tok/s", "% bound")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, d, hf_prefill, hf_decode in rows:
        print("| " + " | ".join([
            label,
            f"{d['weight_bytes'] / 2**20:.0f}",
            f"{d['prefill_tokens_per_s']:.0f}",
            ratio(d['prefill_tokens_per_s'], hf_prefill),
            f"{d['decode_tokens_per_s']:.1f}",
            ratio(d['decode_tokens_per_s'], hf_decode),
            f"{d['read_bandwidth_bytes_per_s'] / 1e9:.1f}",
            f"{d['decode_bound_tokens_per_s']:.1f}",
            f"{100 * d['decode_fraction_of_bound']:.0f}",
        ]) + " |")


if __name__ == "__main__":
    main()
