#!/usr/bin/env bash
# Runs interop.py in its own virtualenv with Alibaba Cloud's official Python SDK.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="$root/target/interop-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
(cd "$root" && cargo build --quiet --example emulator --example verify)
"$venv/bin/python" "$here/interop.py"
# The encryption-mode vectors the crate's tests reproduce, computed again with Python.
"$venv/bin/python" "$here/encrypted_scene_id.py" | diff - "$root/tests/vectors/encrypted-scene-id.json"
echo "ok   encryption-mode vectors match Python's cryptography"
