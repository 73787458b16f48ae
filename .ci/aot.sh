#!/usr/bin/env bash
# Native AOT proof: publishes examples/EchoHost with PublishAot=true (no trim or AOT warning allowed), starts the
# native binary with its appsettings.json (endpoints moved to free addresses on the command line), gets one echo
# back over TCP, and checks that a bad value still fails the start with one line on stderr and exit code 1, i.e.
# that the configuration is bound and validated in the native build too. Needs clang and zlib1g-dev (.ci/run installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(mktemp -d)
host=
cleanup() { [ -n "$host" ] && kill "$host" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT

log="$out/publish.log"
if ! dotnet publish examples/EchoHost -c Release -r linux-x64 -p:PublishAot=true -o "$out/bin" >"$log" 2>&1; then
    cat "$log"; echo "aot: publish failed"; exit 1
fi
if grep -E 'warning (IL|CS|CA)[0-9]+' "$log"; then
    echo "aot: the publish has trim/AOT warnings (above)"; exit 1
fi

"$out/bin/EchoHost" --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0 --Transport:Endpoints:udp:Url=udp://127.0.0.1:0 \
    "--Transport:Endpoints:unix:Url=unix:$out/echo.sock" >"$out/host.log" 2>&1 &
host=$!
# Waits on the host's own log line (at most 20 s), then takes the port it picked.
port=$(grep -m1 -oP "Listening on tcp://127\.0\.0\.1:\K\d+(?= \(endpoint 'tcp')" < <(timeout 20 tail -n +1 -f "$out/host.log")) || {
    cat "$out/host.log"; echo "aot: the native host did not report its tcp endpoint"; exit 1; }
answer=$(printf 'aot says hello' | timeout 10 socat -t 5 - "TCP:127.0.0.1:$port")
[ "$answer" = "aot says hello" ] || { echo "aot: expected the echo, got '$answer'"; exit 1; }
kill -TERM "$host"; wait "$host" || { echo "aot: the native host did not exit 0 on SIGTERM"; exit 1; }
host=

set +e
error=$("$out/bin/EchoHost" --Transport:Sockets:Backlog=0 --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0 2>&1 >/dev/null)
status=$?
set -e
expected="Transport:Sockets:Backlog is 0; it must be from 1 to 65535."
[ "$status" = 1 ] && [ "$error" = "$expected" ] || { echo "aot: a bad value gave exit $status and: $error"; exit 1; }
echo "aot: EchoHost published with Native AOT, no warnings; bound appsettings.json, echoed over tcp, rejected a bad value"
