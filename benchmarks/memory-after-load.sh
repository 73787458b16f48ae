#!/usr/bin/env bash
# Does memory come back after a burst? Starts an example host, takes its RSS after start (baseline), then runs
# ROUNDS identical bursts; after each it samples RSS while the host is idle. Several variants (environment variables
# and host arguments) run in turn, each in a fresh process, so design choices and GC settings compare side by side.
#
#   benchmarks/memory-after-load.sh [options] [-- NAME='[VAR=VALUE ...] [--host:arg=value ...] [@/other/Host.dll]' ...]
#     --host echo|kv        examples/EchoHost (default) or examples/KeyValueHost
#     --load stall|redis    stall: CONNS connections that send and never read (EchoHost's default);
#                           redis: redis-benchmark -t set,get over a 100,000-key space (KeyValueHost's default)
#     --transport tcp|unix  where the load connects (default tcp)
#     --conns N             stall: connections (default 200); redis: clients (default 50)
#     --rounds N            bursts per variant (default 3)
#     --idle S              seconds of idleness sampled after each burst (default 60)
#     --sample S            seconds between samples (default 10)
#     --no-build            use the existing Release build
#   Variants default to one, "default" (the host as shipped). A word @PATH runs another build of the host (e.g. one
#   of main, to compare before and after). Examples:
#     benchmarks/memory-after-load.sh -- default='' conserve='DOTNET_GCConserveMemory=5' server='DOTNET_gcServer=1'
#     benchmarks/memory-after-load.sh --host kv --rounds 5 -- default='' limit='DOTNET_GCHeapHardLimit=0xA000000'
#
# Output: one line per sample (variant, round, seconds idle, RSS MiB) on stderr, and a table on stdout: baseline,
# the peak RSS during each burst and the RSS after 10 s, 30 s and the full idle time. Run it under the quiet and cpu
# locks on a shared machine; a burst of the stall load holds 200 x ~1 MiB in the host's pipes by design.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
host=echo load= transport=tcp conns= rounds=3 idle=60 sample=10 build=1
variants=()
while [ $# -gt 0 ]; do
    case $1 in
        --host) host=$2; shift 2 ;;
        --load) load=$2; shift 2 ;;
        --transport) transport=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --idle) idle=$2; shift 2 ;;
        --sample) sample=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --) shift; variants=("$@"); break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ ${#variants[@]} -gt 0 ] || variants=("default=")
case $host in
    echo) project=EchoHost; load=${load:-stall} ;;
    kv) project=KeyValueHost; load=${load:-redis} ;;
    *) echo "--host echo|kv" >&2; exit 2 ;;
esac
if [ "$load" = stall ]; then conns=${conns:-200}; else conns=${conns:-50}; fi

work=$(mktemp -d /tmp/memory-after-load.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cc -O2 -o "$work/memload" benchmarks/memload/memload.c
if [ "$build" = 1 ]; then
    dotnet build "examples/$project" -c Release -v q -nologo >/dev/null
fi
dll=$root/examples/$project/bin/Release/net10.0/$project.dll

rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until the host answers on its TCP port (an echo or a PING).
wait_ready() {
    for _ in $(seq 300); do
        if [ "$host" = echo ]; then
            [ "$(printf x | timeout 2 socat -t 1 - "TCP:127.0.0.1:$1" 2>/dev/null)" = x ] && return 0
        else
            redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        fi
        sleep 0.1
    done
    echo "the host did not start; log:" >&2; cat "$work/host.log" >&2; exit 1
}

# One burst; prints the peak RSS seen while it ran.
burst() {
    local pid=$1 port=$2 target peak=0 now
    if [ "$transport" = unix ]; then target=unix:$work/host.sock; else target=tcp:127.0.0.1:$port; fi
    if [ "$load" = stall ]; then
        mkfifo "$work/sync"
        "$work/memload" stall "$target" -c "$conns" -b 8000000 --sync <"$work/sync" >"$work/stall.out" &
        local load_pid=$!
        exec 9>"$work/sync"
        until grep -q stalled "$work/stall.out" 2>/dev/null; do sleep 0.1; done
        sleep 1 # the host's pipes are full; RSS settles
        peak=$(rss "$pid")
        echo >&9; exec 9>&-
        wait "$load_pid"; rm -f "$work/sync"
    else
        local args=(-t set,get -n 400000 -r 100000 -c "$conns" -P 16 -q)
        if [ "$transport" = unix ]; then args+=(-s "$work/host.sock"); else args+=(-p "$port"); fi
        redis-benchmark "${args[@]}" >/dev/null 2>&1 &
        local load_pid=$!
        while kill -0 "$load_pid" 2>/dev/null; do
            now=$(rss "$pid"); [ "$now" -gt "$peak" ] && peak=$now
            sleep 0.5
        done
        wait "$load_pid"
    fi
    echo "$peak"
}

table=$work/table
for variant in "${variants[@]}"; do
    name=${variant%%=*}
    spec=${variant#*=}
    envs=() args=() variant_dll=$dll
    for word in $spec; do
        if [[ $word == --* ]]; then args+=("$word"); elif [[ $word == @* ]]; then variant_dll=${word#@}; else envs+=("$word"); fi
    done
    port=$(free_port)
    endpoints=("--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:$port" "--Transport:Endpoints:unix:Url=unix:$work/host.sock")
    [ "$host" = echo ] && endpoints+=("--Transport:Endpoints:udp:Url=udp://127.0.0.1:0")
    env ${envs[@]+"${envs[@]}"} dotnet "$variant_dll" "${endpoints[@]}" --Logging:LogLevel:Default=Warning \
        ${args[@]+"${args[@]}"} >"$work/host.log" 2>&1 &
    pid=$!; pids+=("$pid")
    wait_ready "$port"
    sleep 2
    base=$(rss "$pid")
    echo "$name baseline ${base} MiB" >&2
    row="| $name | $base |"
    for r in $(seq "$rounds"); do
        peak=$(burst "$pid" "$port")
        at10=- at30=- last=-
        for t in $(seq "$sample" "$sample" "$idle"); do
            sleep "$sample"
            now=$(rss "$pid")
            echo "$name round $r idle ${t}s ${now} MiB" >&2
            [ "$t" -eq 10 ] && at10=$now
            [ "$t" -eq 30 ] && at30=$now
            last=$now
        done
        row="$row $peak / $at10 / $at30 / $last |"
    done
    echo "$row" >>"$table"
    kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo "$project, load $load over $transport ($conns connections), $rounds rounds, RSS in MiB"
echo "round columns: peak during the burst / after 10 s idle / after 30 s / after ${idle} s"
echo
header="| variant | baseline |"; sep="|---|---:|"
for r in $(seq "$rounds"); do header="$header round $r |"; sep="$sep---:|"; done
echo "$header"; echo "$sep"
cat "$table"
