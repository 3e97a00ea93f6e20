#!/usr/bin/env bash
# Soak: N protected requests (default 1,000,000) at concurrency 256 through an axum app, against
# an emulator process. Fails unless there are no errors, open file descriptors stay under the
# pools' ceiling, and RSS grows by less than 10 MiB after warm-up. CI runs it with 20,000.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
requests=${1:-1000000}
source "$here/emulator.sh"

"$bin/bench" --scenario soak --endpoint "$url" --requests "$requests" --concurrency 256 | tee "$work/soak.jsonl"
python3 - "$work/soak.jsonl" <<'PY'
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1])][-1]
problems = []
if summary["errors"]:
    problems.append(f"errors: {summary['errors']}")
if summary["requests"] == 0:
    problems.append("no request succeeded")
# Four sets of at most C connections each (the load generator's one per worker to the app and
# to the minting API, the app server's side of the first, and our client's capped pool)
# plus the process's own files: a leak of sockets crosses this ceiling.
ceiling = 4 * summary["concurrency"] + 64
if summary["open_fds_end"] > ceiling:
    problems.append(f"open fds {summary['open_fds_end']} over the ceiling {ceiling}")
# Flat: after warm-up, the second half opens no lasting descriptors (a little slack for
# connections the pools replace).
if summary["open_fds_end"] > summary["open_fds_middle"] + 32:
    problems.append(f"open fds grew from {summary['open_fds_middle']} to {summary['open_fds_end']} in the second half")
growth = (summary["rss_kib_end"] - summary["rss_kib_middle"]) / 1024
if growth >= 10:
    problems.append(f"RSS grew {growth:.1f} MiB in the second half")
print(f"soak: {summary['requests']} requests, errors {summary['errors'] or 'none'}; RSS +{growth:.1f} MiB in the second half; "
      f"fds {summary['open_fds_middle']} -> {summary['open_fds_end']}")
if problems:
    sys.exit("soak failed: " + "; ".join(problems))
PY
