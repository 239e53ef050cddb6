# Recur: build, test, demo, bench. ONNX Runtime comes from Microsoft's NuGet packages (Directory.Packages.props).
# GPU=cuda builds the CUDA flavor (Microsoft.ML.OnnxRuntime.Gpu.Linux) into its own output folders.
DOTNET      ?= dotnet
CONFIG      ?= Release
GPU         ?=
FLAVOR_DIR  := $(if $(GPU),$(GPU)/,)
BUILD_FLAGS := -c $(CONFIG) $(if $(GPU),-p:RecurGpu=$(GPU),)
CLI_OUT     := Cli/bin/$(FLAVOR_DIR)$(CONFIG)/net10.0
DEMO_OUT    := out/demo-rwkv

export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

TOKREF_OUT  := tools/tokenizer-reference/out/.done

.PHONY: all build tokenizer-reference test test-providers demo bench bench-packages microbench clean

all: build

ifneq ($(GPU),)
ifneq ($(GPU),cuda)
$(error GPU=$(GPU): the only GPU flavor is cuda)
endif
endif

build:
	$(DOTNET) build Recur.slnx $(BUILD_FLAGS) -warnaserror --nologo -v quiet -clp:ErrorsOnly
	@mkdir -p bin
	@printf '#!/usr/bin/env sh\n# Runs the recur CLI built by make, from any directory.\nhere=$$(cd "$$(dirname "$$0")/.." && pwd)\nexec $(DOTNET) "$$here/$(CLI_OUT)/recur.dll" "$$@"\n' > bin/recur
	@chmod +x bin/recur
	@echo "built: ./bin/recur"

# Reference token ids from Hugging Face tokenizers (npm) for the tokenizer equality tests.
tokenizer-reference: $(TOKREF_OUT)

$(TOKREF_OUT): tools/tokenizer-reference/package-lock.json tools/tokenizer-reference/reference.mjs tools/tokenizer-reference/corpus.txt tools/tokenizer-reference/fetch.sh
	bash tools/tokenizer-reference/fetch.sh
	@touch $(TOKREF_OUT)

test: build $(TOKREF_OUT)
	$(DOTNET) test tests/Recur.Tests $(BUILD_FLAGS) --no-build --nologo

# The execution-provider tests against the current flavor (CI runs them on the CUDA flavor: without CUDA on the
# host only the fallback and --require-provider paths can run).
test-providers: build
	$(DOTNET) test tests/Recur.Tests $(BUILD_FLAGS) --no-build --nologo --filter "FullyQualifiedName~ExecutionProviderTests|FullyQualifiedName~ProviderTests|FullyQualifiedName~OrtLibraryTests"

# Convert the RWKV-4 checkpoint that ships in tests/golden, check it against Hugging Face's logits, generate.
demo: build
	@echo "== convert: tests/golden/rwkv (a tiny RWKV-4 in Hugging Face layout) -> $(DEMO_OUT)"
	./bin/recur convert tests/golden/rwkv -o $(DEMO_OUT)
	@echo "== validate against the logits Hugging Face transformers computed (whole sequence, then prefill 11 + state)"
	./bin/recur validate $(DEMO_OUT) --expected tests/golden/rwkv/expected.safetensors
	./bin/recur validate $(DEMO_OUT) --expected tests/golden/rwkv/expected.safetensors --split 11
	@echo "== inspect"
	./bin/recur inspect $(DEMO_OUT) | head -8
	@echo "== generate 12 tokens greedily from token ids"
	./bin/recur generate $(DEMO_OUT) --ids "40 238 75 258 206" --max-new-tokens 12

# Random-weight checkpoints at DESIGN.md's benchmark shapes (made once, in out/bench/), converted, then
# `recur bench` on each: prompt 128, 64 decode steps, median of BENCH_REPEAT, decode against the bandwidth
# bound and prefill against the GEMM peak measured in the same run, decode after 128..2048 positions.
# BENCH_ARGS passes more bench options (--threads 1, ...).
BENCH_DIR    := out/bench
BENCH_MODELS := rwkv-169m rwkv7-0.1b mamba-130m mamba2-130m falcon-mamba-130m gemma-46m recurrent-gemma-35m jamba-tiny-306m switch-105m
BENCH_REPEAT ?= 5
BENCH_ARGS   ?=
SYNTHETIC    := tools/Recur.SyntheticCheckpoint/bin/$(CONFIG)/net10.0/synthetic-checkpoint

bench-packages: build
	@[ -f $(BENCH_DIR)/pkg/tiny-rwkv/recur.json ] && [ $(BENCH_DIR)/pkg/tiny-rwkv/recur.json -nt $(CLI_OUT)/Recur.Graphs.dll ] \
	  || ./bin/recur convert tests/golden/rwkv -o $(BENCH_DIR)/pkg/tiny-rwkv --force -q
	@for m in $(BENCH_MODELS); do \
	  [ -f $(BENCH_DIR)/ckpt/$$m/config.json ] || $(SYNTHETIC) $$m $(BENCH_DIR)/ckpt/$$m || exit 1; \
	  [ -f $(BENCH_DIR)/pkg/$$m/recur.json ] && [ $(BENCH_DIR)/pkg/$$m/recur.json -nt $(CLI_OUT)/Recur.Graphs.dll ] \
	    || ./bin/recur convert $(BENCH_DIR)/ckpt/$$m -o $(BENCH_DIR)/pkg/$$m --force -q || exit 1; \
	done

bench: bench-packages
	@uptime
	python3 tools/bench_table.py ./bin/recur $(BENCH_DIR)/pkg --repeat $(BENCH_REPEAT) $(BENCH_ARGS)
	@uptime

# BenchmarkDotNet micro benchmarks (one decode step, one 128-token prefill, Forward's own overhead); not run by CI.
microbench: bench-packages
	$(DOTNET) run $(BUILD_FLAGS) --project tests/Recur.Benchmarks -- --filter '$(or $(FILTER),*)'

clean:
	rm -rf bin out */bin */obj tests/*/bin tests/*/obj tools/*/bin tools/*/obj
