#!/usr/bin/env bash
# Makes examples/shiny/.venv hold the packages of the requirement files given
# (default: the example's own), pinned there. Does nothing when the venv was
# already made from the same files. Used by examples/shiny/run and ./test.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=examples/shiny/.venv
files=("${@:-examples/shiny/requirements.txt}")
# The stamp names every file installed so far; a file's -r includes are
# hashed with it, so editing a pin installs again.
want=$(cat "${files[@]}" examples/shiny/requirements.txt | sha256sum | cut -c1-64)
if [ -f "$venv/.stamp" ] && grep -qx "$want" "$venv/.stamp" && [ -x "$venv/bin/python" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "shiny-env: creating $venv" >&2
    python3 -m venv "$venv"
fi
for file in "${files[@]}"; do
    echo "shiny-env: installing $file into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file"
done
echo "$want" >> "$venv/.stamp"
