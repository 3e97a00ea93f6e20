#!/usr/bin/env bash
# Soak: N protected requests (default 1,000,000) at concurrency 256 through an axum app, against
# an emulator process. Fails unless there are no errors, each pool of sockets stays within its
# bound, other descriptors stay flat, and RSS grows by less than 10 MiB after warm-up. CI runs
# it with 20,000.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
requests=${1:-1000000}
source "$here/emulator.sh"

"$bin/loadgen" --scenario soak --endpoint "$url" --requests "$requests" --concurrency 256 | tee "$work/soak.jsonl"
python3 - "$work/soak.jsonl" <<'PY'
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1])][-1]
problems = []
if summary["errors"]:
    problems.append(f"errors: {summary['errors']}")
if summary["requests"] == 0:
    problems.append("no request succeeded")
c = summary["concurrency"]
# Four sets of at most C connections each (the load generator's one per worker to the app and
# to the minting API, the app server's side of the first, and our client's capped pool)
# plus the process's own files: a leak of sockets crosses this ceiling.
ceiling = 4 * c + 64
if summary["open_fds_end"] > ceiling:
    problems.append(f"open fds {summary['open_fds_end']} over the ceiling {ceiling}")
sockets = summary["sockets_end"]
if sockets["app"] > 2 * c + 1:
    problems.append(f"{sockets['app']} sockets to or from the app, over 2 x {c} and its listener")
# Minting holds C; the rest is our client's pool, capped at C.
if sockets["emulator"] > 2 * c:
    problems.append(f"{sockets['emulator'] - c} upstream connections, over the client's cap of {c}")
# Flat: the pools may still fill up to their caps, but nothing else may grow after warm-up.
if sockets["other"] > summary["sockets_middle"]["other"] + 8:
    problems.append(f"descriptors other than the pools' sockets grew from {summary['sockets_middle']['other']} to {sockets['other']}")
growth = (summary["rss_kib_end"] - summary["rss_kib_middle"]) / 1024
if growth >= 10:
    problems.append(f"RSS grew {growth:.1f} MiB in the second half")
print(f"soak: {summary['requests']} requests, errors {summary['errors'] or 'none'}; RSS +{growth:.1f} MiB in the second half; "
      f"fds {summary['open_fds_middle']} -> {summary['open_fds_end']} (end: {sockets})")
if problems:
    sys.exit("soak failed: " + "; ".join(problems))
PY
