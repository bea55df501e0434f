#!/usr/bin/env bash
# Every figure of the README's Performance section for one device, in one go (a lent GPU
# is held for minutes, so one call should do it all):
#   bash scripts/measure.sh cuda OUT_DIR      # or cpu; REPEATS=3 for a quicker pass
# Writes OUT_DIR/bench.json (all cases, --compile on CUDA), OUT_DIR/options.txt (one option
# at a time on the 3x32x32 CNN and the batch-100 MLP), OUT_DIR/runs.txt (the default
# command line's summary.json figures per option), OUT_DIR/sweeps.json (stacked against
# basic sweeps of 16 and 64 jobs) and OUT_DIR/tests.txt (the test suite
# on this device: trainer.device=auto picks it). dlrun must be importable by $PYTHON
# (default python3): an editable install, or PYTHONPATH=<this repository>.
set -u
device=${1:?usage: measure.sh cpu|cuda OUT_DIR}
out=$(realpath -m "${2:?usage: measure.sh cpu|cuda OUT_DIR}")
repeats=${REPEATS:-5}
py=${PYTHON:-python3}  # a GPU machine may have python3 alone
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
cd "$root" || exit 1

"$py" scripts/bench.py --device "$device" --repeats "$repeats" --json > "$out/bench.json"

for option in "" trainer.precision=bf16 trainer.tf32=true trainer.channels_last=true; do
    "$py" scripts/bench.py --device "$device" --repeats "$repeats" --no-compile \
        --case cnn_cifar --case mlp_b100 ${option:+--set "$option"} 2>/dev/null |
        sed "s/^/[${option:-defaults}] /"
done > "$out/options.txt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for overrides in "" trainer.precision=bf16 trainer.precision=fp16 trainer.compile=true \
        trainer.deterministic=true "model=cnn data=mnist1d" "model=cnn data=mnist1d trainer.compile=true"; do
    # shellcheck disable=SC2086  # the overrides are separate words
    (cd "$work" && "$py" -m dlrun trainer.progress=off "trainer.device=$device" \
        "hydra.run.dir=$work/run" $overrides > /dev/null 2>&1)
    "$py" - "$work/run/summary.json" "${overrides:-defaults}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
metric = next(k for k in ("test_acc", "test_mae") if k in s["final"])
device = f", device {s['device_peak_mb']:.0f} MB" if "device_peak_mb" in s else ""
print(f"[{sys.argv[2]}] {s['device']}: {s['steps_per_s']:.0f} steps/s, wall {s['wall_time_s']:.1f} s, "
      f"{metric} {s['final'][metric]:.3f}, host {s['host_peak_mb']:.0f} MB{device}")
PY
    rm -rf "$work/run"
done > "$out/runs.txt" 2>&1

# stacked sweeps against the basic launcher: whole commands, K = 16 and 64 jobs
"$py" scripts/bench.py --sweep --device "$device" --jobs 16 --jobs 64 --launcher stacked \
    --launcher basic --json > "$out/sweeps.json" 2> "$out/sweeps.log"

"$py" -m pytest -p no:cacheprovider > "$out/tests.txt" 2>&1
echo "measure.sh: results in $out"
