#!/usr/bin/env bash
# Side by side, in one run: Alibaba's official Python SDK and this crate, against the same
# emulator. Prints the JSON lines, then a table with ratios. Usage: loadtest/compare.sh [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
requests=${1:-2000}
venv="$root/target/interop-venv"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/interop/requirements.txt"
source "$here/emulator.sh"
out=$work

sdk() { "$venv/bin/python" "$here/sdk_bench.py" --endpoint "$url" --key-id "$ALIBABA_CLOUD_ACCESS_KEY_ID" --secret "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" "$@"; }
{
  sdk --sign 50000
  "$bin/loadgen" --scenario sign --requests 200000
  sdk --requests "$requests" --threads 1
  "$bin/loadgen" --scenario client --endpoint "$url" --requests "$requests" --concurrency 1
  sdk --requests "$requests" --threads 8
  "$bin/loadgen" --scenario client --endpoint "$url" --requests "$requests" --concurrency 8
  "$bin/loadgen" --scenario client --endpoint "$url" --requests $((requests * 4)) --concurrency 64
} | tee "$out/lines.jsonl"

python3 - "$out/lines.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def find(scenario, concurrency=1):
    return next(l for l in lines if l["scenario"] == scenario and l["concurrency"] == concurrency)
rows = [
    ("signing ns/request (ours: whole request)", find("sdk-sign")["ns_per_op"], find("sign")["ns_per_op"], True),
    ("verifications/s, sequential", find("sdk-client")["per_second"], find("client")["per_second"], False),
    ("verifications/s, 8 threads / tasks", find("sdk-client", 8)["per_second"], find("client", 8)["per_second"], False),
    ("p50 latency µs, sequential", find("sdk-client")["p50_us"], find("client")["p50_us"], True),
    ("client CPU µs per verification, sequential", find("sdk-client")["cpu_us_per_request"], find("client")["cpu_us_per_request"], True),
]
print()
print(f"| {'measure':44} | {'official Python SDK':>19} | {'this crate':>10} | {'ratio':>7} |")
print(f"|{'-'*46}|{'-'*21}|{'-'*12}|{'-'*9}|")
for name, sdk, ours, lower_better in rows:
    ratio = sdk / ours if lower_better else ours / sdk
    print(f"| {name:44} | {sdk:>19,.0f} | {ours:>10,.0f} | {ratio:>6.1f}x |")
wide = find("client", 64)
print(f"\nthis crate at concurrency 64: {wide['per_second']:,.0f} verifications/s over {wide['upstream_connections']} upstream connections in total")
PY
