#!/bin/sh
# Installs the Debian 12 packages haven needs to build, run and test, and only those that are
# missing. Called by `make run` and `make test`; safe to run again. Uses sudo when not root.
set -eu

PKGS="meson ninja-build pkg-config gcc libc6-dev libglib2.0-dev libwebsockets-dev \
libwebsockets-evlib-glib zlib1g-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev sqlite3 \
python3 curl wrk iproute2 util-linux"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

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
