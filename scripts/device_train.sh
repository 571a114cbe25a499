#!/usr/bin/env bash
# Continue a default-model training run on a lent GPU machine (the session `device` tool), in one
# call of at most ~8 minutes, and bring the compact checkpoint back through $OUT.
#
#   bash scripts/device_train.sh MINUTES [CONFIG] [CHECKPOINT_DIR]
#   (defaults: 6, configs/mnv2_cmi_v4.json, checkpoints/mnv2-cmi-v4)
#
# The run's own config is used with the machine's settings on top (device cuda, batch 128,
# 14 sampler processes) and `../shared` replaced by `.pack` (../shared does not travel).
# Here, before the call (the pack is ~42 MB; the machine takes at most 64 MiB of working tree):
#   python scripts/pack_train_data.py ../shared/train ../shared/data/coco128 .pack --video-step 5 --quality 62
#   echo /.pack/ >> .git/info/exclude
# The call: run `bash scripts/device_train.sh 6` with carry [".pack"]; then here:
#   cp <files_at>/checkpoint.* checkpoints/mnv2-cmi-v4/ && git add checkpoints/mnv2-cmi-v4
# The machine has its own torch/OpenCV; the package runs from src/ (PYTHONPATH), no install.
set -uo pipefail
MINUTES="${1:-6}"
CONFIG="${2:-configs/mnv2_cmi_v4.json}"
CKPT="${3:-checkpoints/mnv2-cmi-v4}"
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
RUN=runs/device
mkdir -p "$RUN" && cp "$CKPT/checkpoint.json" "$CKPT/checkpoint.safetensors" "$RUN"/
python3 - "$CONFIG" "$RUN/config.json" <<'EOF'
import json, sys
cfg = json.loads(open(sys.argv[1]).read().replace("../shared/train", ".pack/train").replace("../shared/data/coco128", ".pack/coco128"))
cfg.update(device="cuda", batch_size=128, num_workers=14, threads=4, prefetch_batches=4)
open(sys.argv[2], "w").write(json.dumps(cfg, indent=1))
EOF
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout $((MINUTES * 60 + 90)) python3 -m alpharefine_sdk train "$RUN/config.json" --no-progress --resume \
    --max-minutes "$MINUTES" --out-dir "$RUN" > "$OUT/train_stdout.txt" 2>&1
echo "train rc $?"
tail -5 "$RUN/log.txt"
cp "$RUN/log.txt" "$RUN/checkpoint.json" "$RUN/checkpoint.safetensors" "$OUT"/
