#!/usr/bin/env bash
# Pub/sub fan-out: 1 publisher, 100 subscribers of one channel, against examples/KeyValueHost and a real redis-server,
# in one run, same load generator (benchmarks/pubsub-fanout/fanout.c), same core. Each server is pinned to core 1
# (taskset -c 1) and the load generator to core 0, so both servers get one core. Rounds are interleaved.
#   benchmarks/pubsub-fanout.sh                        # 3 rounds, windows 1 and 16, TCP and Unix socket
#   ROUNDS=5 SECONDS_PER_RUN=10 WINDOWS="1 64" TRANSPORTS=tcp benchmarks/pubsub-fanout.sh
# Run it under the locks: flock -x /work/.locks/quiet flock /work/.locks/cpu benchmarks/pubsub-fanout.sh
# Needs redis-server, a C compiler and at least 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-3}
SUBSCRIBERS=${SUBSCRIBERS:-100}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-2}
WINDOWS=${WINDOWS:-"1 16"}
SIZE=${SIZE:-32}
TRANSPORTS=${TRANSPORTS:-"tcp unix"}
SERVER_CORE=${SERVER_CORE:-1}
CLIENT_CORE=${CLIENT_CORE:-0}
OURS_PORT=${OURS_PORT:-16390}
REDIS_PORT=${REDIS_PORT:-16391}

dotnet build examples/KeyValueHost -c Release -v q -nologo >/dev/null
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cc -O2 -o "$work/fanout" benchmarks/pubsub-fanout/fanout.c

taskset -c "$SERVER_CORE" dotnet examples/KeyValueHost/bin/Release/net10.0/KeyValueHost.dll \
    --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:$OURS_PORT --Transport:Endpoints:unix:Url=unix:$work/ours.sock \
    --Logging:LogLevel:Default=Warning >"$work/ours.log" 2>&1 &
pids+=($!)
taskset -c "$SERVER_CORE" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --unixsocket "$work/redis.sock" \
    --save '' --appendonly no --daemonize no --logfile "$work/redis.log" &
pids+=($!)
for port in "$OURS_PORT" "$REDIS_PORT"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$port" ping >/dev/null
done

# One run: prints "delivered/s p99_us errors p50_us".
run() { # server transport window
    local target
    if [ "$2" = tcp ]; then
        target=(--port "$([ "$1" = ours ] && echo "$OURS_PORT" || echo "$REDIS_PORT")")
    else
        target=(--socket "$work/$1.sock")
    fi
    taskset -c "$CLIENT_CORE" "$work/fanout" "${target[@]}" --subscribers "$SUBSCRIBERS" --seconds "$SECONDS_PER_RUN" \
        --warmup "$WARMUP" --window "$3" --size "$SIZE" \
        | sed -nE 's/.*delivered_per_s=([0-9]+).*p50_us=([0-9]+) p99_us=([0-9]+).*errors=([0-9]+).*/\1 \3 \4 \2/p'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "fan-out: 1 publisher, $SUBSCRIBERS subscribers, ${SIZE}-byte messages, ${SECONDS_PER_RUN}s per run after ${WARMUP}s warm-up;"
echo "servers on core $SERVER_CORE, load generator on core $CLIENT_CORE; median of $ROUNDS interleaved round(s)"
echo
echo "| transport | window | redis-server msg/s | KeyValueHost msg/s | ratio | redis-server p50 / p99 | KeyValueHost p50 / p99 | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for transport in $TRANSPORTS; do
    for window in $WINDOWS; do
        : >"$work/redis.txt"; : >"$work/ours.txt"
        for _ in $(seq "$ROUNDS"); do
            run redis "$transport" "$window" >>"$work/redis.txt"
            run ours "$transport" "$window" >>"$work/ours.txt"
        done
        rr=$(awk '{print $1}' "$work/redis.txt" | median); rp=$(awk '{print $2}' "$work/redis.txt" | median)
        orate=$(awk '{print $1}' "$work/ours.txt" | median); op=$(awk '{print $2}' "$work/ours.txt" | median)
        r50=$(awk '{print $4}' "$work/redis.txt" | median); o50=$(awk '{print $4}' "$work/ours.txt" | median)
        errs=$(cat "$work/redis.txt" "$work/ours.txt" | awk '{s+=$3} END {print s+0}')
        awk -v t="$transport" -v w="$window" -v rr="$rr" -v o="$orate" -v rp="$rp" -v op="$op" -v r50="$r50" -v o50="$o50" -v e="$errs" \
            'BEGIN { printf "| %s | %s | %.0f | %.0f | %.2f | %d / %d us | %d / %d us | %d |\n", t, w, rr, o, o/rr, r50, rp, o50, op, e }'
    done
done
