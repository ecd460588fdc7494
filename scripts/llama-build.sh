#!/usr/bin/env bash
# The llama.cpp build for this machine (issue 14): llama-cpp-python compiled for the machine's own
# vector extensions (AVX2/AVX-512/VNNI as /proc/cpuinfo lists them, AMX off) when it builds AND runs
# here, else the portable wheel (-DGGML_NATIVE=OFF) `make setup` installed before. Both wheels
# are kept, each in its own wheelhouse directory; the choice is recorded in RECORD as
# "<version> native|portable" and the script is a no-op once RECORD names this version.
#
#   scripts/llama-build.sh PYTHON WHEELHOUSE VERSION RECORD
#
# The native wheel is tried in a scratch directory first (pip install --target) by a subprocess
# that loads the verified default model and evaluates a few tokens: a CPU without an instruction
# the build assumed dies there (SIGILL), never in the venv. Only when that subprocess succeeds is
# the native wheel installed into the venv (--force-reinstall --no-deps); a failed build or
# probe keeps the portable one. Why: prompt tokens/s side by side in docs/benchmarks.md
# ("Issue 14: first token", bench/llama_build.py).
set -euo pipefail
py=$1 wheels=$2 version=$3 record=$4
if [[ -f "$record" ]] && grep -q "^$version " "$record"; then
  exit 0
fi
portable() { echo "llama-cpp-python $version: keeping the portable build ($1)"; echo "$version portable" >"$record"; exit 0; }
native="$wheels/native"
# this machine's vector extensions, AMX off: the -DGGML_NATIVE=ON build (AMX tiles on a Xeon VM)
# crashed with SIGSEGV in its first decode here (2026-12-06); the probe below catches a CPU that
# lacks one of these (SIGILL) and keeps the portable wheel
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) "
native_args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
declare -A option_of=([avx]=AVX [avx2]=AVX2 [fma]=FMA [f16c]=F16C [bmi2]=BMI2 [avx512f]=AVX512
  [avx512vbmi]=AVX512_VBMI [avx512_vnni]=AVX512_VNNI [avx512_bf16]=AVX512_BF16 [avx_vnni]=AVX_VNNI)
for flag in "${!option_of[@]}"; do
  if [[ $flags == *" $flag "* ]]; then
    native_args+=" -DGGML_${option_of[$flag]}=ON"
  fi
done
mkdir -p "$native"
if ! ls "$native"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version for this machine's instruction set (6-11 minutes)"
  # --no-cache-dir: pip caches a built wheel by name and version, whatever CMAKE_ARGS said
  CMAKE_ARGS="$native_args" "$py" -m pip wheel --quiet --no-deps --no-cache-dir \
    "llama-cpp-python==$version" -w "$native" || portable "the native build failed"
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
"$py" -m pip install --quiet --no-deps --target "$probe" "$native"/llama_cpp_python-"$version"-*.whl \
  || portable "the native wheel does not install"
if ! PYTHONPATH="$probe" "$py" - "$probe" <<'EOF'
import sys
import llama_cpp
from llama_cpp import Llama
from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS, verify

assert llama_cpp.__file__.startswith(sys.argv[1]), llama_cpp.__file__  # the build under test
llm = Llama(model_path=str(verify(default_models_dir(), MODELS[DEFAULT_MODEL])), n_ctx=256, verbose=False)
llm.eval(llm.tokenize(b"a few tokens through every kernel of the native build", add_bos=True))
EOF
then
  portable "the native build did not run here"
fi
"$py" -m pip install --quiet --no-deps --force-reinstall "$native"/llama_cpp_python-"$version"-*.whl
echo "llama-cpp-python $version: the native build for this machine is installed"
echo "$version native" >"$record"
