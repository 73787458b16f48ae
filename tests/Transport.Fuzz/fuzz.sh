#!/usr/bin/env bash
# Fuzzes Transport's parsers with AFL++ and SharpFuzz (see docs/fuzzing.md).
#   fuzz.sh TARGET[,TARGET...]|all MINUTES   fuzz each target for MINUTES, in slices, resuming earlier runs
#   fuzz.sh tmin TARGET INPUT OUTPUT          minimise a crashing input with afl-tmin
#   fuzz.sh cmin TARGET OUTPUT_DIR            the smallest set of queue inputs with the same coverage
# Needs afl-fuzz (Debian: afl++) and the .NET SDK; the instrumentation tool comes from the repo's tool manifest.
# Output (queues, crashes, hangs, the instrumented build) goes to $FUZZ_WORK, /tmp/transport-fuzz by default.
# On a shared machine each slice runs niced under a shared lock that benchmarks take exclusively
# ($FUZZ_LOCK, /work/.locks/quiet when it exists), and the build under $FUZZ_BUILD_LOCK.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${FUZZ_WORK:-/tmp/transport-fuzz}
slice=${FUZZ_SLICE_SECONDS:-120}
bin=$work/bin
targets=(http-head resp length-prefixed delimiter line fixed-size fixed-header message-reader transport-url proxy-protocol)
# The assemblies whose code the targets exercise: SharpFuzz rewrites them to report coverage to afl-fuzz.
instrument=(Transport.Abstractions Transport.Framing Transport.Protocols.Greeting Transport.Protocols.KeyValue)

lock=()
if [ -n "${FUZZ_LOCK:-}" ] || [ -e /work/.locks/quiet ]; then lock=(flock -s "${FUZZ_LOCK:-/work/.locks/quiet}"); fi
build_lock=()
if [ -n "${FUZZ_BUILD_LOCK:-}" ] || [ -e /work/.locks/cpu ]; then build_lock=(flock "${FUZZ_BUILD_LOCK:-/work/.locks/cpu}"); fi

export AFL_SKIP_BIN_CHECK=1            # the program is dotnet, which afl-fuzz cannot see instrumented
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FORKSRV_INIT_TMOUT=60000    # a niced dotnet start on a busy machine takes seconds
export AFL_AUTORESUME=1                # a second run carries on the first one's queue
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

build() {
    if [ -n "${FUZZ_NO_BUILD:-}" ] && [ -f "$bin/Transport.Fuzz.dll" ]; then return; fi
    rm -rf "$bin"
    (cd "$root" && dotnet tool restore >/dev/null)
    "${build_lock[@]}" dotnet build "$here/Transport.Fuzz.csproj" -c Release -o "$bin" -nologo -v quiet
    for name in "${instrument[@]}"; do
        (cd "$root" && dotnet tool run sharpfuzz "$bin/$name.dll" >/dev/null)
    done
}

run_target() { dotnet "$bin/Transport.Fuzz.dll" "$@"; }

dict_for() { if [ -f "$here/dict/$1.dict" ]; then echo "-x $here/dict/$1.dict"; fi; }

afl_stat() { sed -nE "s/^$2 *: *//p" "$work/out/$1/default/fuzzer_stats" 2>/dev/null || true; }

fuzz_slice() {
    local target=$1 seconds=$2
    mkdir -p "$work/out"
    # shellcheck disable=SC2046
    "${lock[@]}" nice -n 19 timeout -s INT -k 15 "$seconds" \
        afl-fuzz -i "$here/corpus/$target" -o "$work/out/$target" -t 2000 -m none $(dict_for "$target") \
        -- dotnet "$bin/Transport.Fuzz.dll" "$target" >"$work/out/$target.log" 2>&1 || true
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$seconds" "$(afl_stat "$target" execs_done)" "$(afl_stat "$target" execs_per_sec)" \
        "$(afl_stat "$target" corpus_count)" "$(afl_stat "$target" saved_crashes)" "$(afl_stat "$target" saved_hangs)" | tee -a "$work/slices.tsv"
}

case "${1:-}" in
    tmin)
        build
        "${lock[@]}" nice -n 19 afl-tmin -i "$3" -o "$4" -t 5000 -m none -- dotnet "$bin/Transport.Fuzz.dll" "$2"
        ;;
    cmin)
        build
        "${lock[@]}" nice -n 19 afl-cmin -i "$work/out/$2/default/queue" -o "$3" -t 5000 -m none -- dotnet "$bin/Transport.Fuzz.dll" "$2"
        ;;
    "" | -h | --help)
        sed -n '2,10p' "$0"
        exit 2
        ;;
    *)
        minutes=${2:?minutes}
        if [ "$1" = all ]; then chosen=("${targets[@]}"); else IFS=, read -ra chosen <<<"$1"; fi
        for target in "${chosen[@]}"; do
            [ -d "$here/corpus/$target" ] || { echo "unknown target '$target'; the targets are ${targets[*]}" >&2; exit 2; }
        done
        build
        echo -e "target\tslice_s\texecs_done\texecs_per_s\tcorpus\tcrashes\thangs"
        left=$((minutes * 60))
        while [ "$left" -gt 0 ]; do
            this=$((left < slice ? left : slice))
            for target in "${chosen[@]}"; do fuzz_slice "$target" "$this"; done
            left=$((left - this))
        done
        for target in "${chosen[@]}"; do
            for kind in crashes hangs; do
                found=$(find "$work/out/$target/default/$kind" -type f -name 'id:*' 2>/dev/null | wc -l)
                if [ "$found" -gt 0 ]; then echo "$target: $found $kind in $work/out/$target/default/$kind"; fi
            done
        done
        ;;
esac
