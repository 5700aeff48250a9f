#!/usr/bin/env bash
# kiln's /v2/ side by side with the reference OCI registry, CNCF distribution (Debian's docker-registry,
# filesystem storage), in one run, holding the same artifact: a ModelPack artifact with one layer of
# LAYER_MIB (default 1024) random bytes and a model card, pushed to kiln with `kiln push` and copied from
# kiln into distribution with skopeo, so both serve the very same manifest bytes. Then:
#   - manifest GET by tag (anonymous, public model) with wrk at 8 and 64 connections: req/s, p50, p99;
#   - `skopeo copy` pull of the artifact to an OCI layout (median of three, alternating), and push of it
#     from the layout (MB/s);
#   - `kiln pull` of the same model from kiln (MB/s).
# Client and servers share this machine's cores, so the numbers are this machine's, not a server's alone.
# Installs docker-registry and wrk with apt when missing. Not part of scripts/test.sh.
# Usage: scripts/bench-oci.sh [LAYER_MIB] [SECONDS_PER_WRK_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
layer_mib="${1:-1024}"
seconds="${2:-10}"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v skopeo >/dev/null || need+=(skopeo)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --quiet --release -p kiln-server -p kiln-cli
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
source scripts/throwaway-server.sh
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false KILN_RATE_LIMIT_PER_MINUTE=100000000 \
  RUST_LOG=warn
kiln_host="127.0.0.1:$port"

dist_port=$((port + 1))
mkdir -p "$work/distribution"
cat >"$work/distribution.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/distribution
http:
  addr: 127.0.0.1:$dist_port
YAML
/usr/bin/docker-registry serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
dist=$!
trap 'kill $server $dist 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$dist_port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
dist_host="127.0.0.1:$dist_port"
distribution_version=$(/usr/bin/docker-registry --version | awk '{print $NF}')

model="$work/model"
mkdir -p "$model"
head -c "$((layer_mib * 1024 * 1024))" /dev/urandom >"$model/weights.dat"
echo "# benchmark model" >"$model/README.md"
"$bin/kiln" push "$model" acme/bench:1.0.0 >/dev/null
for _ in $(seq 600); do
  [ "$("$bin/kiln" show acme/bench:1.0.0 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = ready ] && break
  sleep 0.2
done
"$bin/kiln" visibility acme/bench public >/dev/null
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
  "docker://$kiln_host/acme/bench:1.0.0" "docker://$dist_host/acme/bench:1.0.0"
accept="Accept: application/vnd.oci.image.manifest.v1+json"
kiln_digest=$(curl -fsI -H "$accept" "http://$kiln_host/v2/acme/bench/manifests/1.0.0" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
dist_digest=$(curl -fsI -H "$accept" "http://$dist_host/v2/acme/bench/manifests/1.0.0" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
[ "$kiln_digest" = "$dist_digest" ] || { echo "the two registries hold different manifests: $kiln_digest $dist_digest"; exit 1; }

# wrk's --latency summary: requests/s, then p50 and p99.
wrk_run() {
  local host="$1" connections="$2"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "$accept" \
    "http://$host/v2/acme/bench/manifests/1.0.0" |
    awk '/Requests\/sec/{rps=$2} $1=="50%"{p50=$2} $1=="99%"{p99=$2} /Non-2xx/{bad=$NF} END{printf "%.0f %s %s %s\n", rps, p50, p99, bad+0}'
}
seconds_of() {
  python3 -c "import subprocess, sys, time; t = time.monotonic(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(f'{time.monotonic() - t:.2f}')" "$@"
}
# skopeo remembers where it saw each blob and mounts it from there instead of uploading: a push must
# upload, so that memory goes before each one.
forget_blob_locations() {
  rm -f /var/lib/containers/cache/blob-info-cache-v1.* "$HOME"/.local/share/containers/cache/blob-info-cache-v1.*
}
mbps() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.0f}')" "$1" "$2"; }
size_mb=$(python3 -c "print(round(($layer_mib * 1048576 + 17) / 1e6))")

printf '\nOCI registry benchmark: one %s MiB layer, manifest %s\n' "$layer_mib" "$kiln_digest"
printf 'kiln %s (release, embedded SQLite + local files) vs distribution %s (filesystem)\n\n' \
  "$("$bin/kiln-server" --version 2>/dev/null | awk '{print $NF}' || echo '?')" "$distribution_version"
printf '%-44s %14s %14s\n' "measure" "kiln" "distribution"
for connections in 8 64; do
  read -r k_rps k_p50 k_p99 k_bad < <(wrk_run "$kiln_host" "$connections")
  read -r d_rps d_p50 d_p99 d_bad < <(wrk_run "$dist_host" "$connections")
  printf '%-44s %14s %14s\n' "manifest GET, $connections connections (req/s)" "$k_rps" "$d_rps"
  printf '%-44s %14s %14s\n' "  p50 latency" "$k_p50" "$d_p50"
  printf '%-44s %14s %14s\n' "  p99 latency" "$k_p99" "$d_p99"
  [ "$k_bad$d_bad" = 00 ] || printf '%-44s %14s %14s\n' "  non-2xx answers" "$k_bad" "$d_bad"
done
# Pulls alternate between the two registries; the median of three each.
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
kiln_pulls=(); dist_pulls=()
for _ in 1 2 3; do
  for name in kiln dist; do
    host_var="${name}_host"
    rm -rf "$work/pull-$name"
    t=$(seconds_of skopeo copy -q --src-tls-verify=false "docker://${!host_var}/acme/bench:1.0.0" "oci:$work/pull-$name:bench")
    if [ "$name" = kiln ]; then kiln_pulls+=("$(mbps "$size_mb" "$t")"); else dist_pulls+=("$(mbps "$size_mb" "$t")"); fi
  done
done
printf '%-44s %14s %14s\n' "skopeo copy pull to an OCI layout (MB/s)" "$(median "${kiln_pulls[@]}")" "$(median "${dist_pulls[@]}")"
printf '%-44s %14s %14s\n' "  the three pulls" "${kiln_pulls[*]}" "${dist_pulls[*]}"
forget_blob_locations
t=$(seconds_of skopeo copy -q --dest-tls-verify=false --dest-creds "admin:$KILN_TOKEN" \
  "oci:$work/pull-kiln:bench" "docker://$kiln_host/acme/pushed:1.0.0")
push_kiln=$(mbps "$size_mb" "$t")
forget_blob_locations
t=$(seconds_of skopeo copy -q --dest-tls-verify=false "oci:$work/pull-dist:bench" "docker://$dist_host/acme/pushed:1.0.0")
push_dist=$(mbps "$size_mb" "$t")
printf '%-44s %14s %14s\n' "skopeo copy push from the layout (MB/s)" "$push_kiln" "$push_dist"
t=$(seconds_of "$bin/kiln" pull acme/bench:1.0.0 --output "$work/kiln-pull")
printf '%-44s %14s %14s\n' "kiln pull (MB/s, every digest checked)" "$(mbps "$size_mb" "$t")" "-"
