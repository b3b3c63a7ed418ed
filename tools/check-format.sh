#!/bin/sh
# Fails when a tracked C file is not formatted as .clang-format says (generated code excepted).
# Run by `make test` (Meson test "format"); `make format` fixes what it reports.
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' | grep -v '\.pb-c\.')
[ -n "$files" ] || { echo "1..0 # SKIP no C files"; exit 0; }
echo "1..1"
if out=$(clang-format --dry-run --Werror $files 2>&1); then
    echo "ok 1 - every C file is clang-formatted"
else
    echo "not ok 1 - files need clang-format -i:"
    echo "$out" | grep -o '^[^:]*\.[ch]' | sort -u | sed 's/^/# /'
fi
