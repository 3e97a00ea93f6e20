#!/usr/bin/env bash
# The loopback floor between two processes, and where a sequential verification's time goes
# beyond it: a ladder of sequential ping-pongs, each adding one layer (Tokio, HTTP/1 in hyper,
# hyper-util's pool, the emulator's server, the verification itself, the crate's client).
# Prints the JSON lines, then a table of each step's p50 as a multiple of the floor's.
# Usage: loadtest/floor.sh [ROUND_TRIPS per step, default 20000]. About half a minute once built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
requests=${1:-20000}
source "$here/emulator.sh"

"$bin/loadgen" --scenario floor --endpoint "$url" --emulator-pid "$emulator_pid" \
    --requests "$requests" | tee "$work/floor.jsonl"
python3 - "$work/floor.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
floor = next(l for l in lines if l["step"] == "a")["p50_us"]
def cell(value, digits=1):
    return "–" if value is None else f"{value:,.{digits}f}"
print()
print(f"cpu: {open('/proc/cpuinfo').read().split('model name')[1].split(':', 1)[1].splitlines()[0].strip()}"
      f", {sum(1 for l in open('/proc/cpuinfo') if l.startswith('processor'))} CPUs; "
      f"{lines[0]['requests']:,} round trips per step after a warm-up")
print()
print("| step | what | p50 µs | × floor | p99 µs | mean µs | CPU µs/trip client + server | switches/trip client + server | others' CPU % |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for l in lines:
    print(f"| {l['step']} | {l['what']} | {cell(l['p50_us'])} | {l['p50_us'] / floor:.1f}× | {cell(l['p99_us'])} "
          f"| {cell(l['mean_us'])} | {cell(l['client_cpu_us'])} + {cell(l['server_cpu_us'])} "
          f"| {cell(l['client_switches'], 2)} + {cell(l['server_switches'], 2)} | {cell(l.get('others_cpu_pct'), 0)} |")
busy = [l["step"] for l in lines if (l.get("others_cpu_pct") or 0) > 10]
if busy:
    print(f"\nwarning: other processes used over 10 % of a CPU during steps {', '.join(busy)}: rerun on a quiet machine")
PY
