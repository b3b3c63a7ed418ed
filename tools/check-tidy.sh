#!/bin/sh
# clang-tidy over src/ with the checks of .clang-tidy (the house style's function size limit:
# 120 lines), as a lint test (Meson test "tidy", suite lint). Prints TAP.
# Usage: check-tidy.sh BUILD_DIR (it has compile_commands.json)
set -eu
build=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
echo "1..1"
if ! command -v run-clang-tidy >/dev/null 2>&1; then
    echo "not ok 1 - run-clang-tidy is not installed (tools/install-deps.sh installs clang-tidy)"
    exit 0
fi
# Every C file of src/ but the generated protobuf code.
out=$(run-clang-tidy -quiet -p "$build" -j 2 "$(pwd)/src/[a-z_]+(/[a-z_-]+)?\.c$" 2>&1) || true
found=$(echo "$out" | grep -E '(warning|error): ' || true)
if [ -z "$found" ]; then
    echo "ok 1 - clang-tidy: every function in src/ within .clang-tidy's limits"
else
    echo "not ok 1 - clang-tidy findings:"
    echo "$found" | sed 's/^/# /'
fi
