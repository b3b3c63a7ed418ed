#!/bin/sh
# Installs what `make fuzz` needs besides the normal build (tools/install-deps.sh): clang and
# its runtime libraries with libFuzzer and the sanitizers, from Debian 12 (clang 14:
# libclang_rt.fuzzer*.a ships in libclang-rt-14-dev). Only what is missing; uses sudo when not
# root; safe to run again.
set -eu

have_libfuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    dir=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' \
        >"$dir/t.c"
    ok=0
    clang -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" >/dev/null 2>&1 || ok=1
    rm -rf "$dir"
    return $ok
}

if have_libfuzzer; then
    exit 0
fi
PKGS="clang libclang-rt-14-dev"
echo "install-fuzz-deps: installing: $PKGS"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-fuzz-deps: need root or sudo to install: $PKGS" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PKGS
if ! have_libfuzzer; then
    echo "install-fuzz-deps: clang still cannot link -fsanitize=fuzzer" >&2
    exit 1
fi
