#!/bin/sh
# Installs the Debian 12 packages haven needs to build, run and test, and only those that are
# missing. Called by `make run` and `make test`; safe to run again. Uses sudo when not root.
set -eu

# Build: GLib, libwebsockets on the GLib loop, libcurl, SQLite, jansson, zlib, protobuf-c,
# GStreamer 1.22 with webrtcbin/libnice and the decoders. Tests: python3, Node (the fake LiveKit
# SFU), gst-launch (its media source), gst-discoverer-1.0 (the recording tests read the files
# back with it: gstreamer1.0-plugins-base-apps), python3-jsonschema (the OpenAPI test),
# python3-prometheus-client (the metrics test parses /metrics with its parser), chromium (the
# web player's browser test), wrk (bench).
PKGS="meson ninja-build pkg-config gcc libc6-dev libglib2.0-dev libwebsockets-dev \
libwebsockets-evlib-glib zlib1g-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev sqlite3 \
protobuf-c-compiler libprotobuf-c-dev libnice-dev libjpeg62-turbo-dev \
libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev \
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-tools \
gstreamer1.0-plugins-base-apps \
python3 python3-jsonschema python3-prometheus-client curl wrk iproute2 util-linux clang-format \
chromium"
# The memory-error runs of `make test`: valgrind (ASan and UBSan come with gcc).
PKGS="$PKGS valgrind"
# The lint suite's static checks: clang-tidy (.clang-tidy's function size limit) and cppcheck.
PKGS="$PKGS clang-tidy cppcheck"
# PostgreSQL (HAVEN_DB=postgresql://...): libpq-dev to build the store, and the server
# (postgresql-15: initdb and pg_ctl in /usr/lib/postgresql/15/bin) for the store's tests, which
# start a throwaway server of their own (tests/pg/README.md).
PKGS="$PKGS postgresql-15 libpq-dev"
# Node.js: the machine image ships one; Debian's is the fallback.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

install_node_modules() {
    # npm packages, each pinned by its package-lock.json: the fake LiveKit SFU's, and the
    # browser test's playwright-core (it drives Debian's chromium; it downloads no browser).
    for dir in tests/fakes/livekit-sfu tests/browser; do
        d="$(dirname "$0")/../$dir"
        if [ -f "$d/package-lock.json" ] && [ ! -d "$d/node_modules" ]; then
            echo "install-deps: npm ci in $dir"
            (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done
}

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    install_node_modules
    exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: need root or sudo to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
install_node_modules
