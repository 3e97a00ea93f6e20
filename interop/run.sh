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
