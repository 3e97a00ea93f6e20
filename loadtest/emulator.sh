# Sourced by the load-test scripts: builds the load generator and the emulator (release) and
# starts an emulator process. Sets $bin (the release directory under CARGO_TARGET_DIR, or
# target/: $bin/loadgen, $bin/aliyun-captcha-emulator), $url
# (the emulator), $emulator_pid, $work (a scratch directory, removed on exit) and exports the
# credentials the emulator accepts.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(cd "$root" && cargo build --quiet --release -p captcha-loadgen -p aliyun-captcha-emulator)
bin="${CARGO_TARGET_DIR:-$root/target}/release"

export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIbenchmark
export ALIBABA_CLOUD_ACCESS_KEY_SECRET=benchmark-secret-value
unset ALIBABA_CLOUD_SECURITY_TOKEN
work=$(mktemp -d)
"$bin/aliyun-captcha-emulator" --listen 127.0.0.1:0 --scene bench-scene >"$work/emulator.out" 2>/dev/null &
emulator_pid=$!
trap 'kill $emulator_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$work/emulator.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/emulator.out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; exit 1; }
