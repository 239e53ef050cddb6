#!/usr/bin/env python3
"""Runs `recur bench --json` on each benchmark package and prints one table.

usage: bench_table.py RECUR PACKAGE_DIR [extra recur bench options...]

Decode is shown against the bandwidth bound recur measures in the same run (read bandwidth / the bytes
a decode step reads: one embedding row unless the table is also the head, routed experts by their share,
the state), prefill against the GEMM peak measured in the same run, decode after 128 / 1024 / 2048
positions of history (bench alternates the depths), the nodes ONNX Runtime runs per decode step, and
prefill and decode against the Hugging Face eager PyTorch figures quoted in docs/DESIGN.md's performance
targets (prompt 128, then 64 greedy steps; not rerun here).
"""
import json
import subprocess
import sys

# model folder -> (label, HF eager prefill tokens/s, HF eager decode tokens/s), from DESIGN.md (None: not measured)
MODELS = [
    ("rwkv-169m", "RWKV-4 169M", 419, 21),
    ("rwkv7-0.1b", "RWKV-7 0.1B", None, None),
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


CONTEXTS = ["128", "512", "1024", "2048"]


def at(d, context):
    return next(s["decode_tokens_per_s"] for s in d["context_sweep"] if s["context"] == context)


def main():
    recur, packages, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []
    for folder, label, hf_prefill, hf_decode in MODELS:
        cmd = [recur, "bench", f"{packages}/{folder}", "--prompt-length", "128", "--new-tokens", "64",
               "--context", *CONTEXTS, "--json", *extra]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        d = json.loads(out)
        rows.append((label, d, hf_prefill, hf_decode))
        print(f"  {label}: done", file=sys.stderr)
    header = ("model", "read/step MiB", "prefill tok/s", "x HF", "% GEMM", "decode tok/s", "x HF", "GB/s", "bound tok/s",
              "% bound", "@128", "@1024", "@2048", "1024/128", "nodes/step", "per layer")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, d, hf_prefill, hf_decode in rows:
        print("| " + " | ".join([
            label,
            f"{d['weight_bytes_per_step'] / 2**20:.0f}",
            f"{d['prefill_tokens_per_s']:.0f}",
            ratio(d['prefill_tokens_per_s'], hf_prefill),
            f"{100 * d['prefill_fraction_of_gemm_peak']:.0f}",
            f"{d['decode_tokens_per_s']:.1f}",
            ratio(d['decode_tokens_per_s'], hf_decode),
            f"{d['read_bandwidth_bytes_per_s'] / 1e9:.1f}",
            f"{d['decode_bound_tokens_per_s']:.1f}",
            f"{100 * d['decode_fraction_of_bound']:.0f}",
            f"{at(d, 128):.1f}",
            f"{at(d, 1024):.1f}",
            f"{at(d, 2048):.1f}",
            f"{at(d, 1024) / at(d, 128):.2f}",
            f"{d['decode_step_nodes']['total']}",
            f"{d['decode_step_nodes']['per_layer']:.0f}",
        ]) + " |")
    print(f"GEMM peak {rows[0][1]['gemm_peak_flops'] / 1e9:.0f} GFLOP/s (first model's run)")


if __name__ == "__main__":
    main()
