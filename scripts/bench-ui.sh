#!/usr/bin/env bash
# Server time of the web UI's heaviest pages on the embedded default (SQLite), beside the API answers that
# carry the same data: a version page with 8 variants x 2 devices x 2 batch sizes of benchmarks, and a model
# page of a model with 1,000 versions. A real ONNX model is pushed and benchmarked by the embedded runner
# first (4 variants on the CPU at batches 1 and 8); its variant and benchmark rows are then copied in the
# database to 8 variants and a second device, and 1,000 versions are written for a second model. Each URL
# is fetched 200 times (curl's total time on loopback, so HTTP included); the table gives p50 and p99.
# Usage: scripts/bench-ui.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug; build=()
[ "${1:-}" = --release ] && { profile=release; build=(--release); }
cargo build --quiet "${build[@]}" -p kiln-server -p kiln-cli
cargo build --quiet "${build[@]}" -p kiln-onnx --example sample_onnx
bin="${CARGO_TARGET_DIR:-target}/$profile"
source scripts/throwaway-server.sh
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=true KILN_RATE_LIMIT_PER_MINUTE=1000000
"$bin/examples/sample_onnx" "$work/model" >/dev/null
"$bin/kiln" push "$work/model" acme/bench:1 >/dev/null
echo seed > "$work/seed.bin"
"$bin/kiln" push "$work/seed.bin" acme/many:1 >/dev/null
# Public, so the pages answer an anonymous visitor as they would a signed-in one.
"$bin/kiln" visibility acme/bench public >/dev/null
"$bin/kiln" visibility acme/many public >/dev/null
# Wait until every benchmark job of acme/bench:1 has finished.
for _ in $(seq 600); do
  if "$bin/kiln" show acme/bench:1 --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
jobs = d["pipeline"]
sys.exit(0 if d["status"] == "ready" and any(j["kind"] == "benchmark" for j in jobs)
         and all(j["state"] not in ("queued", "running") for j in jobs) else 1)'; then break; fi
  sleep 0.5
done
python3 - "$work/data/kiln.db" <<'PY'
import datetime, json, sqlite3, sys, uuid
conn = sqlite3.connect(sys.argv[1], timeout=30)
(version_id,) = conn.execute(
    "SELECT v.id FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = 'bench'").fetchone()
variants = conn.execute("SELECT * FROM variants WHERE version_id = ?", (version_id,)).fetchall()
columns = [c[1] for c in conn.execute("PRAGMA table_info(variants)")]
files = conn.execute("SELECT * FROM variant_files WHERE version_id = ?", (version_id,)).fetchall()
results = conn.execute("SELECT * FROM benchmark_results WHERE version_id = ?", (version_id,)).fetchall()
assert results, "the embedded runner measured nothing"
for row in variants:  # 4 more variants, copies of the 4 real ones
    new = dict(zip(columns, row)); new["name"] += "-copy"
    conn.execute(f"INSERT INTO variants ({','.join(new)}) VALUES ({','.join('?' * len(new))})", list(new.values()))
for (vid, variant, path, digest, size) in files:
    conn.execute("INSERT INTO variant_files VALUES (?, ?, ?, ?, ?)", (vid, variant + "-copy", path, digest, size))
rows = conn.execute("SELECT * FROM benchmark_results WHERE version_id = ?", (version_id,)).fetchall()
for (rid, vid, variant, job, runner, device, batch, result, at) in rows:
    for name in (variant, variant + "-copy"):
        for dev in {device, "cuda:0"}:
            if (name, dev) == (variant, device):
                continue
            r = json.loads(result); r["device"] = dev
            conn.execute("INSERT INTO benchmark_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (uuid.uuid4().hex, vid, name, job, runner, dev, batch, json.dumps(r), at))
(model_id,) = conn.execute("SELECT id FROM models WHERE name = 'many'").fetchone()
start = datetime.datetime(2026, 12, 1)
conn.executemany("INSERT INTO versions (id, model_id, version, status, created_at) VALUES (?, ?, ?, 'ready', ?)",
                 [(uuid.uuid4().hex, model_id, f"2.{i}.0",
                   (start + datetime.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")) for i in range(999)])
conn.commit()
n = conn.execute("SELECT COUNT(*) FROM benchmark_results WHERE version_id = ?", (version_id,)).fetchone()[0]
print(f"seeded: {len(variants) * 2} variants, {n} benchmark results; acme/many has 1,000 versions", file=sys.stderr)
PY
percentiles() {
  local url="$1" times=()
  for _ in $(seq 200); do
    times+=("$(curl -fsS -o /dev/null -w '%{time_total}' "$url")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f | %.1f", a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000}'
}
echo "| $profile build, 200 requests each | p50 ms | p99 ms |"
echo "|---|---|---|"
for case in \
  "version page (8 variants x 2 devices x 2 batches)|$KILN_SERVER/models/acme/bench/versions/1" \
  "  the API's version JSON (the same data)|$KILN_SERVER/api/v1/models/acme/bench/versions/1" \
  "model page (1,000 versions; first 50 shown)|$KILN_SERVER/models/acme/many" \
  "  the API's model JSON (newest 100 versions)|$KILN_SERVER/api/v1/models/acme/many" \
  "model list page|$KILN_SERVER/"; do
  echo "| ${case%%|*} | $(percentiles "${case#*|}") |"
done
