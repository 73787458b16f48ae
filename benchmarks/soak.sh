#!/usr/bin/env bash
# Soak: examples/EchoHost under connect/disconnect churn for minutes, its RSS sampled every 10 s. Not a CI test: a
# flat series after warm-up says nothing leaks per connection, per session or per reset.
#
#   benchmarks/soak.sh [--transport tcp|unix|udp|all] [--minutes M] [--conns N] [--ports N] [--sample S] [--no-build]
#     tcp, unix: N connections at once (default 200), each 16 echoes of 4 KiB (every byte checked), then closed and
#                replaced; every 50th connection instead sends 1 MiB without reading and resets (a crashed client).
#     udp:       N source ports (default 20,000), one socket each, in two load processes (so each stays under a
#                20,000-descriptor limit), taking turns at 2,000 datagrams/s of 64 B in all: with a 5 s session idle
#                timeout every port's turn starts a new session (about 10,000 live at once, 2,000 started and 2,000
#                ended per second). MaxSessions is raised to 30,000 for it.
#   Default: all three, 5 minutes each. Run it under the quiet and cpu locks on a shared machine.
# Output: per transport, the RSS series (MiB) and the load generator's totals; exit 1 if any echo was wrong.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
transports=all minutes=5 conns=200 ports=20000 sample=10 build=1
while [ $# -gt 0 ]; do
    case $1 in
        --transport) transports=$2; shift 2 ;;
        --minutes) minutes=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --ports) ports=$2; shift 2 ;;
        --sample) sample=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$transports" = all ] && transports="tcp unix udp"

work=$(mktemp -d /tmp/soak.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cc -O2 -o "$work/memload" benchmarks/memload/memload.c
[ "$build" = 1 ] && dotnet build examples/EchoHost -c Release -v q -nologo >/dev/null
dll=$root/examples/EchoHost/bin/Release/net10.0/EchoHost.dll
ulimit -n "$(ulimit -Hn)"

rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

status=0
for transport in $transports; do
    port=$(free_port)
    dotnet "$dll" "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:$port" "--Transport:Endpoints:unix:Url=unix:$work/echo.sock" \
        "--Transport:Endpoints:udp:Url=udp://127.0.0.1:$port" --Transport:Udp:MaxSessions=30000 \
        --Transport:Udp:SessionIdleTimeout=00:00:05 --Logging:LogLevel:Default=Warning >"$work/host.log" 2>&1 &
    pid=$!; pids+=("$pid")
    for _ in $(seq 300); do [ "$(printf x | timeout 2 socat -t 1 - "TCP:127.0.0.1:$port" 2>/dev/null)" = x ] && break; sleep 0.1; done
    sleep 1
    series="$(rss "$pid")"
    seconds=$((minutes * 60))
    case $transport in
        tcp) load=("$work/memload" churn "tcp:127.0.0.1:$port" -c "$conns" -s 4096 -m 16 --stall-every 50 -d "$seconds" -i "$sample") ;;
        unix) load=("$work/memload" churn "unix:$work/echo.sock" -c "$conns" -s 4096 -m 16 --stall-every 50 -d "$seconds" -i "$sample") ;;
        udp) load=("$work/memload" udp "127.0.0.1:$port" -p $((ports / 2)) -w 128 -s 64 -r 1000 -d "$seconds" -i "$sample") ;;
        *) echo "unknown transport $transport" >&2; exit 2 ;;
    esac
    "${load[@]}" >"$work/load.out" 2>"$work/load.err" &
    load_pid=$!
    second_pid=
    if [ "$transport" = udp ]; then
        "${load[@]}" >"$work/load2.out" 2>"$work/load2.err" &
        second_pid=$!
    fi
    for _ in $(seq "$sample" "$sample" "$seconds"); do
        sleep "$sample"
        series="$series $(rss "$pid")"
    done
    wait "$load_pid" || status=1
    if [ -n "$second_pid" ]; then wait "$second_pid" || status=1; fi
    # After the load: does it come back once quiet?
    idle=
    for _ in 1 2 3; do sleep "$sample"; idle="$idle $(rss "$pid")"; done
    echo "$transport: RSS MiB every ${sample} s from the start of the load: $series; then idle:$idle"
    cat "$work"/load*.out | sed 's/^/  /'
    for err in "$work"/load*.err; do echo "  load, last interval: $(tail -n 1 "$err")"; done
    rm -f "$work"/load*.out "$work"/load*.err
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
exit "$status"
