#!/usr/bin/env bash
# Continue the default-model training run on a lent GPU machine (the session `device` tool), in
# one call of at most ~8 minutes, and bring the compact checkpoint back through $OUT.
#
# Here, before the call (the pack is ~42 MB; the machine takes at most 64 MiB of working tree):
#   python scripts/pack_train_data.py ../shared/train ../shared/data/coco128 .pack --video-step 5 --quality 62
#   echo /.pack/ >> .git/info/exclude
# The call: run `bash scripts/device_train.sh 6` with carry [".pack"]; then here:
#   cp <files_at>/checkpoint.* checkpoints/mnv2-cmi-v3/ && git add checkpoints/mnv2-cmi-v3
# The machine has its own torch/OpenCV; the package runs from src/ (PYTHONPATH), no install.
set -uo pipefail
MINUTES="${1:-6}"
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
RUN=runs/v3
mkdir -p "$RUN" && cp checkpoints/mnv2-cmi-v3/checkpoint.json checkpoints/mnv2-cmi-v3/checkpoint.safetensors "$RUN"/
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout $((MINUTES * 60 + 90)) python3 -m alpharefine_sdk train configs/mnv2_cmi_v3.json --no-progress --resume \
    --max-minutes "$MINUTES" --out-dir "$RUN" > "$OUT/train_stdout.txt" 2>&1
echo "train rc $?"
tail -5 "$RUN/log.txt"
cp "$RUN/log.txt" "$RUN/checkpoint.json" "$RUN/checkpoint.safetensors" "$OUT"/
