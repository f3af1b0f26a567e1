#!/usr/bin/env bash
# Every GPU measurement and the CUDA-only tests in one go (about 6 minutes on an H100/H200).
#
#   bash benchmarks/run_gpu.sh [OUT]
#
# Needs covidlib's dependencies importable by $PYTHON (default: python3) and a CUDA GPU.
# Results files go to benchmarks/results/ (the scripts' own place) and, with the step logs,
# to OUT (default: benchmarks/results). Each step has its own time limit, so one slow step
# cannot eat the others' time; the most wanted numbers (training rates) come first.
set -uo pipefail
out=${1:-benchmarks/results}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 COVIDLIB_PROGRESS=0 TQDM_DISABLE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, timm, fastai; print('torch', torch.__version__, '| timm', \
timm.__version__, '| fastai', fastai.__version__, '|', torch.cuda.get_device_name())"

step() {  # step LIMIT NAME COMMAND...: run with a time limit, log to OUT/NAME.log
  local limit=$1 name=$2 started=$SECONDS rc
  shift 2
  echo "== $name (limit ${limit} s)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  tail -n 22 "$out/$name.log"
  echo "== $name: exit $rc after $((SECONDS - started)) s"
}

step 200 train "$py" benchmarks/train.py --models all --scale 1.0 --batches 16 --rounds 2
step 100 cuda_tests "$py" -m pytest -q -p no:cacheprovider tests/engine/test_cuda.py
step 100 models "$py" benchmarks/models.py --batch 32 --iters 6
step 70 data_pipeline "$py" benchmarks/data_pipeline.py
if [ "$(cd "$out" && pwd)" != "$(cd benchmarks/results && pwd)" ]; then
  cp benchmarks/results/*-cuda.* "$out/" 2>/dev/null
fi
ls -l "$out"
