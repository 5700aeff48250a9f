"""A deployment system that does not use kiln's code: verifies a kiln manifest with PyJWT, given only the
JWKS URL (run by scripts/manifest-crosscheck.sh), and refuses a tampered copy."""
import sys

import jwt

args = sys.argv[1:]
# `--parent REF`: the manifest must carry a lineage naming REF as a parent, signed with the rest.
parent = None
if "--parent" in args:
    at = args.index("--parent")
    parent = args[at + 1]
    del args[at : at + 2]
jwks_url, jws_file, model, version = args[:4]
alias = args[4] if len(args) > 4 else None
jws = open(jws_file).read().strip()
key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(jws)
manifest = jwt.decode(jws, key.key, algorithms=["EdDSA"], options={"require": ["exp", "iat"]})
assert manifest["model"] == model and manifest["version"] == version, manifest
assert manifest["alias"] == alias, manifest
assert manifest["variants"], "a manifest names at least one deployable variant"
subject = f"{model}@{alias} -> {version}" if alias else f"{model}:{version}"
origins = ", ".join(f"{v['name']} {v.get('origin', '?')}" for v in manifest["variants"])
print(f"PyJWT {jwt.__version__}: verified {subject} "
      f"(sequence {manifest['sequence']}, {len(manifest['variants'])} variants: {origins}; key {key.key_id})")
if parent is not None:
    lineage = manifest.get("lineage") or {}
    assert [p["reference"] for p in lineage.get("parents", [])] == [parent], manifest.get("lineage")
    assert all("status" not in p for p in lineage["parents"]), "a manifest signs no moving status"
    print(f"PyJWT: the signed lineage names {parent} ({lineage['parents'][0]['role']})"
          f" and {len(lineage.get('datasets', []))} dataset(s)")
header, payload, signature = jws.split(".")
tampered = ".".join([header, payload[:-1] + ("A" if payload[-1] != "A" else "B"), signature])
try:
    jwt.decode(tampered, key.key, algorithms=["EdDSA"])
except jwt.InvalidSignatureError:
    print("PyJWT: a tampered manifest is refused")
else:
    sys.exit("PyJWT accepted a tampered manifest")
