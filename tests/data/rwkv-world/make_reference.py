"""Writes reference_ids.json: the ids of every text of corpus.json under ChatRWKV's reference World tokenizer.

Usage (outside the project tree, from a snapshot of github.com/BlinkDL/ChatRWKV):
    python3 make_reference.py CHATRWKV_CHECKOUT
It runs TRIE_TOKENIZER and RWKV_TOKENIZER of CHATRWKV_CHECKOUT/tokenizer/rwkv_tokenizer.py (the file up to its
"# Demo" section, so the module's demo and benchmarks do not run) on rwkv_vocab_v20230424.txt beside this script,
checks that the two agree and that decode(encode(text)) == text, and records both ids and the commit.
"""
import json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
checkout = sys.argv[1]
source = open(os.path.join(checkout, "tokenizer", "rwkv_tokenizer.py"), encoding="utf-8").read()
cut = source.index("# Demo")
cut = source.rindex("\n####", 0, cut)
module = {}
exec(compile(source[:cut], "rwkv_tokenizer.py", "exec"), module)
vocab = os.path.join(here, "rwkv_vocab_v20230424.txt")
trie = module["TRIE_TOKENIZER"](vocab)
naive = module["RWKV_TOKENIZER"](vocab)
corpus = json.load(open(os.path.join(here, "corpus.json"), encoding="utf-8"))
cases = []
for text in corpus["texts"]:
    ids = trie.encode(text)
    assert naive.encode(text) == ids, text
    assert trie.decode(ids) == text, text
    cases.append({"text": text, "ids": ids})
commit = subprocess.run(["git", "-C", checkout, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
out = {"reference": {"repository": "BlinkDL/ChatRWKV", "commit": commit, "path": "tokenizer/rwkv_tokenizer.py",
                     "class": "TRIE_TOKENIZER (RWKV_TOKENIZER agrees on every case)"}, "cases": cases}
with open(os.path.join(here, "reference_ids.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=True, indent=0)
print(len(cases), "cases,", sum(len(c["ids"]) for c in cases), "ids")
