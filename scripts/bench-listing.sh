#!/usr/bin/env bash
# How fast the listings answer with 100,000 models, and one model with 100,000 versions, on the embedded
# default (SQLite): the first page, a page deep into the list by cursor and by offset, and each filter,
# median of 20 requests each (curl's total time, so HTTP and JSON included). The rows are written straight
# into the database (pushing 100,000 versions through the API would take most of an hour); one version is
# pushed for real first so that the namespace, the model and the schema are the server's own.
# Usage: scripts/bench-listing.sh [--release] [MODELS]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug; build=()
[ "${1:-}" = --release ] && { profile=release; build=(--release); shift; }
count="${1:-100000}"
cargo build --quiet "${build[@]}" -p kiln-server -p kiln-cli
bin="target/$profile"
source scripts/throwaway-server.sh
start_throwaway_server "$bin/kiln-server" KILN_EMBEDDED_RUNNER=false KILN_RATE_LIMIT_PER_MINUTE=100000
echo seed > "$work/seed.bin"
"$bin/kiln" push "$work/seed.bin" acme/seed:1 >/dev/null
python3 - "$work/data/kiln.db" "$count" "$work/deep-version-cursor" <<'PY'
import base64, datetime, json, sqlite3, sys, uuid
db, count, cursor_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = sqlite3.connect(db, timeout=30)
(ns,) = conn.execute("SELECT id FROM namespaces WHERE name = 'acme'").fetchone()
now = "2026-12-01 00:00:00"
tags = ["nlp", "vision", "speech", "tabular"]
rows, tag_rows = [], []
for i in range(count):
    model_id = uuid.uuid4().hex
    tag = tags[i % len(tags)]
    rows.append((model_id, ns, f"model-{i:06d}", f"model number {i} for {tag}", f'["{tag}"]', now, now,
                 "public" if i % 2 else "private"))
    tag_rows.append((model_id, tag))
conn.executemany("INSERT INTO models (id, namespace_id, name, description, tags, created_at, updated_at,"
                 " visibility) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
conn.executemany("INSERT INTO model_tags (model_id, tag) VALUES (?, ?)", tag_rows)
(seed,) = conn.execute("SELECT id FROM models WHERE name = 'seed'").fetchone()
start = datetime.datetime(2026, 12, 1)
at = lambda i: start + datetime.timedelta(milliseconds=i)
versions = [(uuid.uuid4().hex, seed, f"2.{i}.0", "ready", at(i).strftime("%Y-%m-%d %H:%M:%S.%f"))
            for i in range(count)]
conn.executemany("INSERT INTO versions (id, model_id, version, status, created_at) VALUES (?, ?, ?, ?, ?)",
                 versions)
conn.commit()
# The cursor after the version 90% of the way down the newest-first list, as the server writes one.
deep = count - 1 - count * 9 // 10
key = [at(deep).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000", f"2.{deep}.0"]
open(cursor_file, "w").write(base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("="))
PY
median_ms() {
  local url="$1" times=()
  for _ in $(seq 20); do
    times+=("$(curl -fsS -o /dev/null -w '%{time_total}' -H "authorization: Bearer $token" "$url")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}'
}
cursor_of() {
  python3 -c 'import base64, json, sys; print(base64.urlsafe_b64encode(json.dumps(sys.argv[1:]).encode()).decode().rstrip("="))' "$@"
}
cursor=$(cursor_of acme model-090000)
deep_version=$(cat "$work/deep-version-cursor")
api="$KILN_SERVER/api/v1"
echo "| listing ($count models; $count versions of one; $profile build) | median ms |"
echo "|---|---|"
for case in \
  "first page (100)|$api/models?limit=100" \
  "page after model 90,000, by cursor|$api/models?limit=100&cursor=$cursor" \
  "page at offset 90,000|$api/models?limit=100&offset=90000" \
  "namespace's first page|$api/namespaces/acme/models?limit=100" \
  "name prefix model-0999|$api/models?prefix=model-0999" \
  "tag speech|$api/models?tag=speech&limit=100" \
  "text 'number 4242'|$api/models?q=number%204242" \
  "deployable variant onnx|$api/models?has_variant=onnx" \
  "model detail (newest 100 of $count versions)|$api/models/acme/seed" \
  "versions, first page (100)|$api/models/acme/seed/versions?limit=100" \
  "versions, a page 90% down, by cursor|$api/models/acme/seed/versions?limit=100&cursor=$deep_version"; do
  echo "| ${case%%|*} | $(median_ms "${case#*|}") |"
done
