#!/usr/bin/env bash
# The packages as a user gets them, proved end to end, outside the repository:
#  1. packs every shipped package (src/, plugins/) to a local feed in a temp folder, warning-free, and checks that
#     each .nupkg has its README, licence expression, project and repository URLs (with the commit) and a .snupkg
#     whose PDB carries Source Link;
#  2. installs the dotnet new template (into a private template hive), instantiates it in the temp folder, builds
#     it with warnings as errors and runs its tests against the local feed, then runs its host and gets one answer;
#  3. builds README's "Hosting it in your own program" app (its Program.cs, appsettings.json and csproj item, taken
#     from README.md) from the packages, with the JIT and published with Native AOT, and gets one answer from the
#     endpoint of its appsettings.json each time. Trim/AOT warnings or no answer fail the step (TRANSPORT_AOT=report
#     prints them and goes on).
# Usage: .ci/packages.sh (from anywhere; CI calls it from .ci/run). Needs socat.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

work="$(mktemp -d /tmp/transport-packages.XXXXXX)"
feed="$work/feed"
hive="$work/template-hive"
pids=()
started=0
prefix="$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' "$repo/eng/Packaging.props")"
# A version of its own per run: the global packages folder never serves a stale build of the same version.
suffix="ci.$(date -u +%Y%m%d%H%M%S).$$"
version="$prefix-$suffix"

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
    for dir in "$HOME"/.nuget/packages/transport.*/"$version"; do
        [ -d "$dir" ] && rm -rf "$dir" && rmdir --ignore-fail-on-non-empty "$(dirname "$dir")"
    done
    return 0
}
trap cleanup EXIT

fail() { echo "packages: FAILED: $*" >&2; exit 1; }
step() { echo "packages: $*"; }

# --- 1. pack -------------------------------------------------------------------------------------------------------
step "packing $version to $feed"
packable=()
for project in "$repo"/src/*/*.csproj "$repo"/plugins/*/*.csproj; do packable+=("$project"); done
dotnet new sln --format sln -n pack -o "$work/pack" >/dev/null
dotnet sln "$work/pack/pack.sln" add "${packable[@]}" >/dev/null
dotnet pack "$work/pack/pack.sln" -c Release -o "$feed" -p:VersionSuffix="$suffix" -p:ContinuousIntegrationBuild=true \
    >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; fail "dotnet pack"; }
if grep -E ': warning [A-Z]*[0-9]*' "$work/pack.log" >/dev/null; then
    grep -E ': warning ' "$work/pack.log" | sort -u
    fail "dotnet pack warned"
fi

count=0
for project in "${packable[@]}"; do
    id="$(basename "$project" .csproj)"
    nupkg="$feed/$id.$version.nupkg"
    [ -f "$nupkg" ] || fail "$id: no $nupkg"
    [ -f "$feed/$id.$version.snupkg" ] || fail "$id: no symbol package"
    nuspec="$(unzip -p "$nupkg" "$id.nuspec")"
    for expected in '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<projectUrl>https://' \
                    '<repository type="git" url="https://' 'commit="' '<description>'; do
        grep -qF "$expected" <<<"$nuspec" || fail "$id: the nuspec has no $expected"
    done
    # Whole outputs into variables: with pipefail, grep -q closing the pipe early would fail unzip.
    files="$(unzip -l "$nupkg")"
    grep -qE ' README\.md$' <<<"$files" || fail "$id: README.md is not in the package"
    unzip -p "$feed/$id.$version.snupkg" "lib/net10.0/$id.pdb" >"$work/pdb"
    grep -aqF '"documents":{"/_/*":"https://' "$work/pdb" || fail "$id: the PDB has no Source Link for /_/ (deterministic paths)"
    count=$((count + 1))
done
step "$count packages: README, MIT licence, project and repository URL with commit, snupkg with Source Link; no warnings"

cat >"$work/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="transport-local" value="$feed" />
  </packageSources>
</configuration>
EOF

# Waits for the host's "Listening on tcp://..." line, sends one line, expects $3 back. $1: log file, $2: what to send.
ask() {
    local log="$1" send="$2" expect="$3" url="" answer
    for _ in $(seq 1 6000); do
        url="$(grep -o 'Listening on tcp://[0-9.]*:[0-9]*' "$log" | head -n 1 | sed 's/Listening on tcp:\/\///')" || true
        [ -n "$url" ] && break
        grep -qE 'fail|crit|Unhandled' "$log" && break
        sleep 0.01
    done
    [ -n "$url" ] || { cat "$log"; fail "the host did not listen on tcp"; }
    answer="$(printf '%s' "$send" | timeout 20 socat -t 5 - "TCP:$url" | tr -d '\r')" || true
    [ "$answer" = "$expect" ] || { cat "$log"; fail "sent '$send' to $url, expected '$expect', got '$answer'"; }
    local elapsed=$(( ($(date +%s%N) - started) / 1000000 )) rss
    rss="$(awk '/^VmRSS/ { printf "%.0f MB", $2 / 1024 }' "/proc/${pids[-1]}/status" 2>/dev/null || echo '?')"
    step "  $url answered '$answer' ($elapsed ms from start to the answer, $rss resident)"
}

# Starts "$@" in the background with its output in $log; records its PID.
start() {
    local log="$1"; shift
    started="$(date +%s%N)"
    "$@" >"$log" 2>&1 &
    pids+=("$!")
}

stop_last() {
    local pid="${pids[-1]}"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'pids[-1]'
}

# --- 2. the template -----------------------------------------------------------------------------------------------
step "dotnet new transport-protocol outside the repository ($work/Acme.Upper)"
dotnet new install "$repo/templates/transport-protocol" --debug:custom-hive "$hive" >"$work/template.log" 2>&1 \
    || { cat "$work/template.log"; fail "dotnet new install"; }
dotnet new transport-protocol -n Acme.Upper -o "$work/Acme.Upper" --TransportVersion "$version" \
    --debug:custom-hive "$hive" >>"$work/template.log" 2>&1 || { cat "$work/template.log"; fail "dotnet new transport-protocol"; }
(
    cd "$work/Acme.Upper"
    dotnet build -c Release >"$work/template-build.log" 2>&1 || { cat "$work/template-build.log"; fail "the template's build"; }
    if grep -E ': warning ' "$work/template-build.log" >/dev/null; then
        grep -E ': warning ' "$work/template-build.log" | sort -u; fail "the template's build warned"
    fi
    dotnet test -c Release --no-build >"$work/template-test.log" 2>&1 || { cat "$work/template-test.log"; fail "the template's tests"; }
    grep -E '^(Passed|Failed)!' "$work/template-test.log"
)
start "$work/template-host.log" "$work/Acme.Upper/Acme.Upper.Host/bin/Release/net10.0/Acme.Upper.Host" \
    --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
ask "$work/template-host.log" $'hello\n' 'HELLO'
stop_last

# --- 3. README's host, from the packages, JIT and Native AOT --------------------------------------------------------
# The body of the fenced block after <!-- snippet: NAME --> in README.md.
readme_block() {
    awk -v marker="<!-- snippet: $1 -->" '
        $0 == marker { found = 1; next }
        found && /^```/ && !inside { inside = 1; next }
        inside && /^```/ { exit }
        inside { print }' "$repo/README.md"
}
app="$work/EchoServer"
step "README's hosting app from the packages ($app)"
dotnet new console -n EchoServer -o "$app" >/dev/null
readme_block readme-hosting >"$app/Program.cs"
readme_block readme-hosting-appsettings >"$app/appsettings.json"
[ -s "$app/Program.cs" ] && [ -s "$app/appsettings.json" ] || fail "README.md has no readme-hosting snippets"
item="$(readme_block readme-hosting-csproj)"
[ -n "$item" ] || fail "README.md has no readme-hosting-csproj snippet"
csproj="$(cat "$app/EchoServer.csproj")"
printf '%s\n' "${csproj%</Project>*}$item" '</Project>' >"$app/EchoServer.csproj"
(
    cd "$app"
    dotnet add package Transport.Hosting --version "$version" >/dev/null
    dotnet add package Transport.Protocols.Echo --version "$version" >/dev/null
    dotnet add package Microsoft.Extensions.Hosting --version "$(sed -n 's:.*<ExtensionsVersion>\(.*\)</ExtensionsVersion>.*:\1:p' "$repo/Directory.Packages.props")" >/dev/null
    dotnet build -c Release -p:TreatWarningsAsErrors=true >"$work/app-build.log" 2>&1 || { cat "$work/app-build.log"; fail "README's app: build"; }
)
start "$work/app-jit.log" "$app/bin/Release/net10.0/EchoServer" --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
ask "$work/app-jit.log" 'ping' 'ping'
stop_last

step "README's hosting app published with Native AOT"
(
    cd "$app"
    dotnet publish -c Release -r linux-x64 -p:PublishAot=true -p:TrimmerSingleWarn=false -o "$work/aot" >"$work/app-aot.log" 2>&1 \
        || { cat "$work/app-aot.log"; fail "README's app: AOT publish"; }
)
# "warning IL2026" (or "Trim analysis warning", "AOT analysis warning" one per call site, TrimmerSingleWarn=false).
aot_warnings="$(grep -E 'warning (IL[0-9]+|NETSDK[0-9]+)' "$work/app-aot.log" | sed -e 's/ \[[^]]*\]$//' -e 's/^ *//' | sort -u || true)"
# TRANSPORT_AOT=report: print what warns and whether the AOT app answers, without failing (while the libraries are
# not yet AOT-clean); the default fails on either.
aot_clean=true
aot_problem() {
    if [ "${TRANSPORT_AOT:-strict}" = "report" ]; then
        step "  NATIVE AOT NOT CLEAN (reported, not failed: TRANSPORT_AOT=report): $*"
        aot_clean=false
    else
        fail "$*"
    fi
}
if [ -n "$aot_warnings" ]; then
    echo "$aot_warnings"
    aot_problem "Native AOT publish of a package consumer warned ($(wc -l <<<"$aot_warnings") distinct)"
fi
[ -f "$work/aot/appsettings.json" ] || fail "appsettings.json is not beside the AOT executable"
start "$work/app-aot-run.log" "$work/aot/EchoServer" --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
if [ "${TRANSPORT_AOT:-strict}" = "report" ]; then
    (ask "$work/app-aot-run.log" 'ping' 'ping') || aot_problem "the AOT app did not answer from its appsettings endpoint"
else
    ask "$work/app-aot-run.log" 'ping' 'ping'
fi
stop_last
if [ "$aot_clean" = true ]; then
    step "all good: packages, template, README's host with the JIT and with Native AOT"
else
    step "good but for Native AOT (above): packages, template, README's host with the JIT"
fi
