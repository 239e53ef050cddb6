# Writes golden_tensor_sums.json: an independent reference (standard library only, no safetensors
# package) for CheckpointGoldenTests. Run from the repository root:
#   python3 tests/Recur.Tests/Checkpoints/golden_tensor_sums.py
import glob, hashlib, json, math, os, struct

FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "F16": ("e", 2), "I64": ("q", 8), "I32": ("i", 4),
           "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("?", 1), "BF16": (None, 2)}

def values(dtype, raw):
    fmt, size = FORMATS[dtype]
    count = len(raw) // size
    if dtype == "BF16":  # bfloat16 is the top half of a float32
        return [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in struct.unpack(f"<{count}H", raw)]
    return [float(v) for v in struct.unpack(f"<{count}{fmt}", raw)]

cases = {}
for path in sorted(glob.glob("tests/golden/*/*.safetensors")):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    tensors = []
    for name in sorted(header):
        info = header[name]
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        v = values(info["dtype"], raw)
        tensors.append({"name": name, "dtype": info["dtype"], "shape": info["shape"], "count": len(v),
                        "sum": math.fsum(v), "abs_sum": math.fsum(abs(x) for x in v),
                        "sha256": hashlib.sha256(raw).hexdigest()})
    cases[os.path.relpath(path, "tests/golden")] = tensors

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_tensor_sums.json")
with open(out, "w") as f:  # one tensor a line, so a diff shows which tensor changed
    f.write('{"generator": "golden_tensor_sums.py", "cases": {\n')
    for i, (case, tensors) in enumerate(cases.items()):
        f.write(f" {json.dumps(case)}: [\n")
        f.write(",\n".join("  " + json.dumps(t) for t in tensors))
        f.write("\n ]" + ("," if i + 1 < len(cases) else "") + "\n")
    f.write("}}\n")
