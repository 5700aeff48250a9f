"""Verifying a deployment manifest with nothing from kiln but its public keys (docs/manifest.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from .errors import IntegrityError, ManifestError
from .files import destination, sha256_file

ALGORITHMS = ["EdDSA"]  # kiln signs with Ed25519 only; never let the token pick its algorithm


def verify_manifest(
    jws: str,
    jwks: str | Mapping[str, Any] | jwt.PyJWKClient,
    *,
    model: str,
    version: str | None = None,
    alias: str | None = None,
    min_sequence: int | None = None,
    issuer: str | None = None,
) -> dict[str, Any]:
    """Checks a compact JWS manifest and returns its payload.

    `jwks` is the key set's URL (`https://kiln.example/.well-known/jwks.json`), a PyJWKClient for it, or the
    key set itself (a dict, e.g. saved once from a trusted channel). Checked: the EdDSA signature by a key
    of the set, `exp` (not expired) and `iat`, and that it is the manifest of `model` and of `alias` (an
    alias manifest) or of `version` (a version manifest when `alias` is None), and, given `min_sequence`
    (the highest seen before), that it is not older, and, given `issuer`, that the registry it names (`iss`:
    its public URL, or `urn:kiln:` and its first key's kid) is that one: keep sequences per issuer, since
    two registries may have models of the same names. Raises ManifestError saying which check failed.
    """
    key = _signing_key(jws.strip(), jwks)
    try:
        payload = jwt.decode(jws.strip(), key, algorithms=ALGORITHMS, options={"require": ["exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise ManifestError("manifest_expired", "the manifest does not verify: it has expired") from None
    except jwt.InvalidSignatureError:
        raise ManifestError(
            "invalid_signature", "the manifest does not verify: the signature does not match its content"
        ) from None
    except jwt.InvalidTokenError as e:
        raise ManifestError("invalid_manifest", f"the manifest does not verify: {e}") from None
    _check_subject(payload, model=model, version=version, alias=alias)
    if issuer is not None and payload.get("iss") != issuer:
        raise ManifestError(
            "wrong_issuer",
            f"the manifest does not verify: it was issued by {payload.get('iss')!r}, not by {issuer!r}",
        )
    if min_sequence is not None and payload.get("sequence", 0) < min_sequence:
        raise ManifestError(
            "manifest_rolled_back",
            f"the manifest does not verify: {_subject(payload)} sequence {payload.get('sequence')} is older "
            f"than sequence {min_sequence} already seen; someone may be serving an old manifest",
        )
    return payload


def _signing_key(jws: str, jwks: str | Mapping[str, Any] | jwt.PyJWKClient) -> jwt.PyJWK:
    try:
        header = jwt.get_unverified_header(jws)
    except jwt.DecodeError as e:
        raise ManifestError("invalid_manifest", f"the manifest is not a compact JWS: {e}") from None
    kid = header.get("kid")
    if header.get("alg") not in ALGORITHMS:
        raise ManifestError("invalid_manifest", f"the manifest is signed with {header.get('alg')!r}, not EdDSA")
    try:
        if isinstance(jwks, Mapping):
            return jwt.PyJWKSet.from_dict(dict(jwks))[kid]
        client = jwks if isinstance(jwks, jwt.PyJWKClient) else jwt.PyJWKClient(jwks)
        # Fetches the set again when the kid is not in a cached copy (a key added since).
        return client.get_signing_key(kid)
    except jwt.PyJWKSetError as e:
        raise ManifestError("unknown_key", f"the manifest does not verify: the JWK Set is unusable: {e}") from None
    except KeyError:
        raise ManifestError("unknown_key", f'the manifest does not verify: key "{kid}" is not in the JWK Set') from None
    except jwt.PyJWKClientConnectionError as e:
        raise ManifestError("jwks_unavailable", f"cannot fetch the JWK Set: {e}") from None
    except jwt.PyJWKClientError as e:
        raise ManifestError("unknown_key", f'the manifest does not verify: key "{kid}": {e}') from None


def _subject(payload: Mapping[str, Any]) -> str:
    if payload.get("alias"):
        return f"{payload.get('model')}@{payload['alias']}"
    return f"{payload.get('model')}:{payload.get('version')}"


def _check_subject(payload: Mapping[str, Any], *, model: str, version: str | None, alias: str | None) -> None:
    wanted = f"{model}@{alias}" if alias else f"{model}:{version}"
    same = payload.get("model") == model and payload.get("alias") == alias
    if version is not None:
        same = same and payload.get("version") == version
    if not same:
        raise ManifestError(
            "wrong_subject", f"the manifest does not verify: it is the manifest of {_subject(payload)}, not of {wanted}"
        )


def manifest_files(manifest: Mapping[str, Any], variant: str | None = None) -> list[Mapping[str, Any]]:
    """The files a manifest signs: a variant's (`variant`), or the pushed files (`sources`)."""
    if variant is None:
        return list(manifest.get("sources", []))
    for candidate in manifest.get("variants", []):
        if candidate["name"] == variant:
            return list(candidate["files"])
    names = ", ".join(v["name"] for v in manifest.get("variants", [])) or "none"
    raise ManifestError(
        "no_such_variant", f"the manifest of {_subject(manifest)} has no variant {variant!r} (variants: {names})"
    )


def check_files(folder: str | Path, manifest: Mapping[str, Any], variant: str | None = None) -> None:
    """Checks that every file the manifest lists (a variant's, or the pushed files) is in `folder` with the
    signed digest. Raises IntegrityError naming the first file that is missing or differs."""
    for entry in manifest_files(manifest, variant):
        path = destination(Path(folder), entry["path"])
        if not path.is_file():
            raise IntegrityError("missing_file", f"{entry['path']}: listed in the manifest, not in {folder}")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise IntegrityError(
                "digest_mismatch",
                f"{entry['path']}: hashes to {actual}, but the signed manifest lists {entry['sha256']}",
            )
