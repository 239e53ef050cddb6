# Writes a golden Mamba / Mamba-2 case in the state-spaces (mamba_ssm) layout with real torch, the cross-check
# of MambaOriginalFormatTests (which writes the same layout with TorchSaveFiles, without torch):
#   /usr/bin/python3 tests/Recur.Tests/Checkpoints/state_spaces_checkpoint.py mamba2 OUT_DIR
#   ./bin/recur convert OUT_DIR -o OUT_DIR-pkg && ./bin/recur validate OUT_DIR-pkg --expected tests/golden/mamba2/expected.safetensors
import json, os, struct, sys

import torch

CONFIGS = {
    "mamba": {"d_model": 64, "n_layer": 3, "vocab_size": 281, "ssm_cfg": {}, "rms_norm": True,
              "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8},
    "mamba2": {"d_model": 64, "d_intermediate": 0, "n_layer": 3, "vocab_size": 270,
               "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "headdim": 16, "ngroups": 2,
                           "chunk_size": 8, "dt_limit": (0.001, float("inf"))},
               "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True, "fused_add_norm": True,
               "pad_vocab_size_multiple": 16, "tie_embeddings": True},
}


def golden_state_dict(case):
    """model.safetensors read with the standard library and torch (no safetensors package), under mamba_ssm's names."""
    blob = open(os.path.join("tests", "golden", case, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    state = {}
    for name, info in sorted(header.items()):
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        tensor = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(info["shape"])
        state[name.replace("backbone.embeddings.", "backbone.embedding.")] = tensor
    state["lm_head.weight"] = state["backbone.embedding.weight"]  # tied: one storage, as MambaLMHeadModel saves it
    return state


def main():
    case, target = sys.argv[1], sys.argv[2]
    state = golden_state_dict(case)
    os.makedirs(target, exist_ok=True)
    torch.save(state, os.path.join(target, "pytorch_model.bin"))
    with open(os.path.join(target, "config.json"), "w") as f:
        json.dump(CONFIGS[case], f, indent=2)


if __name__ == "__main__":
    main()
