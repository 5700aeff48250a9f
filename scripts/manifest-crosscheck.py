"""A deployment system that does not use kiln's code: verifies a kiln manifest with PyJWT, given only the
JWKS URL (run by scripts/manifest-crosscheck.sh), and refuses a tampered copy."""
import sys

import jwt

jwks_url, jws_file, model, version = sys.argv[1:5]
alias = sys.argv[5] if len(sys.argv) > 5 else None
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
header, payload, signature = jws.split(".")
tampered = ".".join([header, payload[:-1] + ("A" if payload[-1] != "A" else "B"), signature])
try:
    jwt.decode(tampered, key.key, algorithms=["EdDSA"])
except jwt.InvalidSignatureError:
    print("PyJWT: a tampered manifest is refused")
else:
    sys.exit("PyJWT accepted a tampered manifest")
