#!/usr/bin/env bash
# redis-benchmark against examples/KeyValueHost and against a real redis-server, in one run, same load, same core.
# Each server is pinned to core 1 (taskset -c 1) and redis-benchmark to core 0, so both servers get one core.
#   benchmarks/keyvalue-vs-redis.sh                 # -n 100000, -P 1 and -P 16, 1 round
#   ROUNDS=3 REQUESTS=200000 benchmarks/keyvalue-vs-redis.sh
# Needs redis-server and redis-tools (apt-get install -y redis-server redis-tools) and at least 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUESTS=${REQUESTS:-100000}
ROUNDS=${ROUNDS:-1}
CLIENTS=${CLIENTS:-50}
SERVER_CORE=${SERVER_CORE:-1}
CLIENT_CORE=${CLIENT_CORE:-0}
OURS_PORT=${OURS_PORT:-16380}
REDIS_PORT=${REDIS_PORT:-16379}

dotnet build examples/KeyValueHost -c Release -v q -nologo >/dev/null
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

taskset -c "$SERVER_CORE" dotnet examples/KeyValueHost/bin/Release/net10.0/KeyValueHost.dll \
    --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:$OURS_PORT --Transport:Endpoints:unix:Url=unix:$work/kv.sock \
    --Logging:LogLevel:Default=Warning >"$work/ours.log" 2>&1 &
pids+=($!)
taskset -c "$SERVER_CORE" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$work/redis.log" &
pids+=($!)
for port in "$OURS_PORT" "$REDIS_PORT"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null
done

# One redis-benchmark run: prints "SET GET" requests per second.
run() {
    taskset -c "$CLIENT_CORE" redis-benchmark -p "$1" -t set,get -n "$REQUESTS" -c "$CLIENTS" -P "$2" -q 2>/dev/null \
        | tr '\r' '\n' | sed -nE 's/^(SET|GET): ([0-9.]+) requests per second.*/\1 \2/p' | sort | awk '{v[$1]=$2} END {print v["SET"], v["GET"]}'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Warm up the JIT (tiered compilation, PGO) before measuring; redis-server gets the same.
run "$OURS_PORT" 16 >/dev/null; run "$REDIS_PORT" 16 >/dev/null

echo "redis-benchmark -t set,get -n $REQUESTS -c $CLIENTS -q, servers on core $SERVER_CORE, client on core $CLIENT_CORE, median of $ROUNDS round(s)"
echo
echo "| pipeline | redis-server SET/s | KeyValueHost SET/s | ratio | redis-server GET/s | KeyValueHost GET/s | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for pipeline in 1 16; do
    : >"$work/redis.txt"; : >"$work/ours.txt"
    for _ in $(seq "$ROUNDS"); do
        run "$REDIS_PORT" "$pipeline" >>"$work/redis.txt"
        run "$OURS_PORT" "$pipeline" >>"$work/ours.txt"
    done
    rs=$(awk '{print $1}' "$work/redis.txt" | median); rg=$(awk '{print $2}' "$work/redis.txt" | median)
    os=$(awk '{print $1}' "$work/ours.txt" | median); og=$(awk '{print $2}' "$work/ours.txt" | median)
    awk -v p="$pipeline" -v rs="$rs" -v os="$os" -v rg="$rg" -v og="$og" \
        'BEGIN { printf "| -P %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", p, rs, os, os/rs, rg, og, og/rg }'
done
