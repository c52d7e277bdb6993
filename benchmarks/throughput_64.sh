#!/usr/bin/env bash
# Issue 24's throughput table: what buys images per CPU-hour for the 64x64 campaign, on a quiet machine.
# Every row is benchmarks/train_throughput.py at the final 64 px stage, batch 32, WGAN-GP (both families'
# demo-64/wide-64 recipe), 10 timed steps after the warm-up. Prints one markdown table.
#   bash benchmarks/throughput_64.sh [steps]       (about 20 minutes on a 2-core CPU, most of it compiling)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-10}
first=1
run() {  # one train_throughput.py call; its header only the first time
    local out
    out=$(python benchmarks/train_throughput.py --final-only --batch 32 --loss wgan_gp --steps "$STEPS" "$@")
    if [ $first = 1 ]; then echo "$out"; first=0; else echo "$out" | grep '^| [a-z]' | grep -v '^| family'; fi
}
for family in stylegan_lite progan; do
    B=(--families "$family" --presets wide-64)
    run "${B[@]}" --precision no                                   # fp32, contiguous: the baseline
    run "${B[@]}" --precision bf16                                 # + bf16 autocast
    run "${B[@]}" --precision bf16 --channels-last --reg-every 1,4 # + channels_last; + GP every 4 steps
    run "${B[@]}" --precision bf16 --channels-last --processes 2   # two runs on one thread each
    if [ "$family" = stylegan_lite ]; then
        run "${B[@]}" --precision bf16 --channels-last --blur-padding zero            # the padding alone
        run "${B[@]}" --precision bf16 --channels-last --blur-padding zero --compile  # + torch.compile
    else
        run "${B[@]}" --precision bf16 --channels-last --compile
    fi
    run --families "$family" --presets demo-64 --precision bf16 --channels-last  # the old widths
done
