"""The hand-written layer (kiln) against a real kiln-server: push, wait, pull, aliases, manifests, resume."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kiln import (
    DistillationFailedError,
    IntegrityError,
    KilnError,
    ManifestError,
    Registry,
    check_files,
    sha256_file,
    verify_manifest,
)
from kiln_client.api.models import list_models, list_versions
from kiln_client.models import DistillationState, VersionDetail, VersionStatus
from sample import MIB, MODEL, VERSION, part_size, read_folder, write_model, write_tiny_onnx


class Interrupted(Exception):
    """Raised from a progress callback to stop a transfer midway, as a dropped connection or ^C would."""


def test_push_uploads_missing_blobs_in_chunks(pushed):
    files, result, progress, part = pushed
    assert result.created
    assert sorted(f.path for f in result.files) == sorted(files)
    # Five files, four blobs: the copy of settings.json is the same blob.
    assert len(result.uploads) == 4
    big = len(files["weights/model.bin"])
    assert [p for p in progress if p[0] == "weights/model.bin"] == [
        ("weights/model.bin", part, big),
        ("weights/model.bin", big, big),
    ]


def test_push_again_is_a_no_op(registry, pushed, tmp_path):
    files, *_ = pushed
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    again = registry.push(tmp_path, MODEL, VERSION)
    assert not again.created and again.uploads == []


def test_push_other_files_under_the_same_version_is_refused(registry, pushed, tmp_path):
    (tmp_path / "other.bin").write_bytes(b"other bytes")
    with pytest.raises(KilnError) as refused:
        registry.push(tmp_path, MODEL, VERSION)
    assert refused.value.code == "version_conflict" and refused.value.status == 409
    assert refused.value.message


def test_wait_settles_on_ready(registry, pushed):
    detail = registry.wait(MODEL, VERSION, timeout=30)
    assert isinstance(detail, VersionDetail) and detail.status == VersionStatus.READY
    assert {job.kind for job in detail.pipeline} >= {"scan"}


def test_pull_gives_back_every_byte(registry, pushed, tmp_path):
    files, *_ = pushed
    result = registry.pull(MODEL, VERSION, tmp_path / "out")
    assert read_folder(tmp_path / "out") == files
    assert sum(f.downloaded for f in result.files) == sum(len(d) for d in files.values())
    # Pulled again: every file is already there with its digest, nothing is fetched.
    again = registry.pull(MODEL, VERSION, tmp_path / "out")
    assert all(f.downloaded == 0 for f in again.files)


def test_interrupted_pull_resumes_with_range(registry, pushed, tmp_path):
    files, *_ = pushed
    big = len(files["weights/model.bin"])

    def stop_midway(path: str, done: int, total: int) -> None:
        if path == "weights/model.bin" and done >= big // 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        registry.pull(MODEL, VERSION, tmp_path, on_progress=stop_midway)
    partial = tmp_path / "weights/model.bin.kiln-partial"
    assert big // 2 <= partial.stat().st_size < big
    assert not (tmp_path / "weights/model.bin").exists()

    result = registry.pull(MODEL, VERSION, tmp_path)
    pulled = {f.path: f for f in result.files}["weights/model.bin"]
    assert big // 2 <= pulled.resumed_from < big
    assert pulled.downloaded == big - pulled.resumed_from
    assert not partial.exists()
    assert read_folder(tmp_path) == files


def test_a_partial_file_with_wrong_bytes_is_discarded(registry, pushed, tmp_path):
    files, *_ = pushed
    target = tmp_path / "weights/model.bin"
    target.parent.mkdir(parents=True)
    # A partial file whose bytes are not the file's: resuming from it cannot give the right digest.
    Path(str(target) + ".kiln-partial").write_bytes(b"\0" * 1000)
    with pytest.raises(IntegrityError) as refused:
        registry.pull(MODEL, VERSION, tmp_path)
    assert refused.value.code == "digest_mismatch" and "discarded" in refused.value.message
    assert not Path(str(target) + ".kiln-partial").exists() and not target.exists()
    registry.pull(MODEL, VERSION, tmp_path)
    assert read_folder(tmp_path) == files


def test_interrupted_push_resumes_its_upload_session(registry, tmp_path):
    part = part_size(registry)
    files = write_model(tmp_path, big_size=part + MIB)

    def stop_after_first_part(path: str, done: int, total: int) -> None:
        if path == "weights/model.bin":
            raise Interrupted

    with pytest.raises(Interrupted):
        registry.push(tmp_path, "acme/resumed", "1", chunk_size=1, on_progress=stop_after_first_part)
    result = registry.push(tmp_path, "acme/resumed", "1", chunk_size=1)
    resumed = {u.path: u for u in result.uploads}
    assert resumed["weights/model.bin"].resumed_from == part
    registry.wait("acme/resumed", "1", timeout=120)
    registry.pull("acme/resumed", "1", tmp_path / "out")
    assert read_folder(tmp_path / "out") == files


def test_alias_manifest_verifies_with_only_the_jwks_url(registry, server, pushed, tmp_path):
    files, *_ = pushed
    alias = registry.set_alias(MODEL, "production", VERSION)
    assert alias.version == VERSION and alias.sequence >= 1
    jws = registry.manifest_jws(MODEL, alias="production")
    assert jws.count(".") == 2  # compact JWS, as `Accept: application/jose` asks

    manifest = verify_manifest(jws, f"{server.url}/.well-known/jwks.json", model=MODEL, alias="production")
    assert manifest["version"] == VERSION and manifest["alias"] == "production"
    assert {s["path"] for s in manifest["sources"]} == set(files)
    registry.pull(MODEL, VERSION, tmp_path)
    check_files(tmp_path, manifest)

    # A version's own manifest verifies as the version's, and not as the alias's.
    version_jws = registry.manifest_jws(MODEL, version=VERSION)
    verify_manifest(version_jws, registry.jwks_url, model=MODEL, version=VERSION)
    with pytest.raises(ManifestError) as wrong:
        verify_manifest(version_jws, registry.jwks_url, model=MODEL, alias="production")
    assert wrong.value.code == "wrong_subject"
    with pytest.raises(ManifestError) as wrong:
        verify_manifest(jws, registry.jwks_url, model=MODEL, alias="staging")
    assert wrong.value.code == "wrong_subject" and "acme/roundtrip@production" in wrong.value.message
    with pytest.raises(ManifestError) as rolled_back:
        verify_manifest(jws, registry.jwks_url, model=MODEL, alias="production", min_sequence=manifest["sequence"] + 1)
    assert rolled_back.value.code == "manifest_rolled_back"
    # The manifest names its registry (no public URL configured: its first key's kid).
    assert manifest["iss"].startswith("urn:kiln:")
    verify_manifest(jws, registry.jwks_url, model=MODEL, alias="production", issuer=manifest["iss"])
    with pytest.raises(ManifestError) as other_registry:
        verify_manifest(jws, registry.jwks_url, model=MODEL, alias="production", issuer="https://staging.example")
    assert other_registry.value.code == "wrong_issuer"


def test_a_tampered_manifest_is_refused(registry, pushed):
    registry.set_alias(MODEL, "production", VERSION)
    jws = registry.manifest_jws(MODEL, alias="production")
    header, payload, signature = jws.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sources"][0]["sha256"] = "sha256:" + "0" * 64  # point a file at other bytes
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(ManifestError) as refused:
        verify_manifest(".".join([header, forged, signature]), registry.jwks_url, model=MODEL, alias="production")
    assert refused.value.code == "invalid_signature"

    # A key the set does not hold (the kid changed, so the signature cannot be checked at all).
    other = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    other["kid"] = "not-a-kiln-key"
    other_header = base64.urlsafe_b64encode(json.dumps(other).encode()).rstrip(b"=").decode()
    with pytest.raises(ManifestError) as unknown:
        verify_manifest(
            ".".join([other_header, payload, signature]), registry.jwks_url, model=MODEL, alias="production"
        )
    assert unknown.value.code == "unknown_key"


def test_pull_by_alias_takes_everything_from_the_signed_manifest(registry, pushed, tmp_path):
    files, *_ = pushed
    registry.set_alias(MODEL, "production", VERSION)
    result = registry.pull_alias(MODEL, "production", tmp_path)
    assert result.version == VERSION and result.manifest["alias"] == "production"
    assert read_folder(tmp_path) == files


def test_a_saved_key_set_verifies_offline(registry, pushed):
    registry.set_alias(MODEL, "production", VERSION)
    jwks = registry.http.get("/.well-known/jwks.json").json()
    jws = registry.manifest_jws(MODEL, alias="production")
    assert verify_manifest(jws, jwks, model=MODEL, alias="production")["version"] == VERSION
    with pytest.raises(ManifestError) as unknown:
        verify_manifest(jws, {"keys": []}, model=MODEL, alias="production")
    assert unknown.value.code == "unknown_key"


def test_refusals_carry_the_servers_code_and_message(registry, server, pushed, tmp_path):
    with pytest.raises(KilnError) as missing:
        registry.version(MODEL, "9.9.9")
    assert missing.value.status == 404 and missing.value.code == "not_found" and missing.value.message
    with pytest.raises(KilnError) as not_ready:
        registry.set_alias(MODEL, "production", "9.9.9")
    assert not_ready.value.status in (404, 409)
    with pytest.raises(KilnError) as no_variant:
        registry.pull(MODEL, VERSION, tmp_path, variant="fp16")
    assert no_variant.value.code == "no_such_variant"
    with pytest.raises(KilnError) as bad_name:
        registry.version("roundtrip", VERSION)
    assert bad_name.value.code == "invalid_name"
    (tmp_path / "a.txt").write_bytes(b"a")
    with Registry(server.url) as anonymous, pytest.raises(KilnError) as unsigned:
        anonymous.push(tmp_path, "acme/anon", "1")
    assert unsigned.value.status == 401 and unsigned.value.code


def test_variants_pull_and_verify(registry, tmp_path):
    write_tiny_onnx(tmp_path / "model" / "model.onnx")
    registry.push(tmp_path / "model", "acme/tiny", "1", variants=["fp32", "fp16"])
    detail = registry.wait("acme/tiny", "1", timeout=120)
    variants = {v.name: v for v in detail.variants}
    assert {"fp32", "fp16"} <= set(variants), [(job.kind, job.state, job.message) for job in detail.pipeline]

    result = registry.pull("acme/tiny", "1", tmp_path / "fp16", variant="fp16")
    assert [f.path for f in result.files] == [f.path for f in variants["fp16"].files]
    listed = {f.path: f.digest for f in variants["fp16"].files}
    assert {f.path: sha256_file(f.target) for f in result.files} == listed

    # By alias: the variant's files and digests come from the signed manifest.
    registry.set_alias("acme/tiny", "production", "1")
    pulled = registry.pull_alias("acme/tiny", "production", tmp_path / "deploy", variant="fp16")
    check_files(tmp_path / "deploy", pulled.manifest, variant="fp16")
    with pytest.raises(ManifestError) as missing:
        registry.pull_alias("acme/tiny", "production", tmp_path / "int8", variant="int8")
    assert missing.value.code == "no_such_variant" and "fp16" in missing.value.message


def test_listings_follow_the_next_links(registry, pushed, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"paged")
    for version in ("p1", "p2", "p3"):
        registry.push(tmp_path, "acme/paged", version)
    walked = [v.version for v in registry.pages(list_versions, "acme", "paged", limit=2)]
    assert walked == ["p3", "p2", "p1"]
    assert [v.version for v in registry.versions("acme/paged")] == walked
    models = [(m.namespace, m.name) for m in registry.pages(list_models, limit=1)]
    assert {tuple(MODEL.split("/")), ("acme", "paged")} <= set(models) and models == sorted(models)
    assert [m.name for m in registry.models(prefix="pag")] == ["paged"]


def test_push_with_lineage_is_shown_and_signed(registry, pushed, tmp_path):
    (tmp_path / "student.bin").write_bytes(b"a student of roundtrip")
    lineage = {
        "parents": [{"reference": f"{MODEL}:{VERSION}", "role": "teacher"}],
        "datasets": [{"uri": "s3://corpus/train.parquet"}],
        "training_run": "https://ci.example/runs/7",
        "producer": {"name": "pytest", "version": "1"},
        "hyperparameters": {"lr": 0.001, "steps": 10, "schedule": "cosine"},
    }
    result = registry.push(tmp_path, "acme/student", "1", lineage=lineage)
    assert result.created
    detail = registry.version("acme/student", "1")
    assert detail.lineage.parents[0].reference == f"{MODEL}:{VERSION}"
    assert detail.lineage.parents[0].role == "teacher"
    assert detail.lineage.hyperparameters["steps"] == 10
    teacher = registry.version(MODEL, VERSION)
    assert [(d.reference, d.role) for d in teacher.derived] == [("acme/student:1", "teacher")]
    # The same push again, lineage and all, is a no-op; another lineage is refused.
    assert not registry.push(tmp_path, "acme/student", "1", lineage=lineage).created
    with pytest.raises(KilnError) as changed:
        registry.push(tmp_path, "acme/student", "1", lineage={**lineage, "training_run": "other"})
    assert changed.value.code == "version_conflict"

    registry.wait("acme/student", "1", timeout=60)
    jws = registry.manifest_jws("acme/student", version="1")
    manifest = verify_manifest(jws, registry.jwks_url, model="acme/student", version="1")
    assert manifest["lineage"]["parents"] == [{"reference": f"{MODEL}:{VERSION}", "role": "teacher"}]
    assert manifest["lineage"]["producer"] == {"name": "pytest", "version": "1"}


def test_a_lineage_is_refused_naming_what_is_wrong(registry, pushed, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"lineage refusals")
    with pytest.raises(KilnError) as typo:
        registry.push(tmp_path, "acme/refused", "1", lineage={"run": "x"})
    assert typo.value.code == "invalid_lineage" and "lineage.run" in typo.value.message
    with pytest.raises(KilnError) as absent:
        registry.push(tmp_path, "acme/refused", "1", lineage={"parents": [{"reference": "acme/none:1", "role": "base"}]})
    assert absent.value.status == 404 and "lineage.parents[0].reference" in absent.value.message
    with pytest.raises(KilnError) as oversized:
        registry.push(tmp_path, "acme/refused", "1", lineage={"hyperparameters": {f"p{i}": i for i in range(65)}})
    assert oversized.value.code == "invalid_lineage" and oversized.value.details["field"] == "lineage.hyperparameters"


def test_a_distillation_is_queued_followed_and_cancelled(registry, pushed):
    # No runner distills on this server: the job waits in the queue until it is cancelled.
    teacher = f"{MODEL}:{VERSION}"
    job = registry.distill(teacher, "acme/py-student:1", student="layers=1", steps=10)
    assert job.state == DistillationState.QUEUED
    assert (job.teacher, job.into) == (teacher, "acme/py-student:1")
    assert registry.distillation(job.id).request.steps == 10
    with pytest.raises(TypeError):
        registry.distill(teacher, "acme/py-student:2", no_such_knob=1)
    with pytest.raises(KilnError) as refused:
        registry.distill(teacher, "acme/py-student:3", steps=0)
    assert refused.value.code == "invalid_distillation"
    assert registry.cancel_distillation(job.id).state == DistillationState.CANCELLED
    seen = []
    with pytest.raises(DistillationFailedError) as ended:
        registry.wait_distillation(job.id, progress=seen.append)
    assert ended.value.code == "distillation_cancelled"
    assert seen and seen[-1].state == DistillationState.CANCELLED
