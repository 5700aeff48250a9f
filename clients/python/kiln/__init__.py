"""kiln: push, wait, pull and verify against a kiln model registry.

    from kiln import Registry
    registry = Registry("http://127.0.0.1:8080", token="kiln_...")
    registry.push("model/", "acme/encoder", "1.0.0")
    registry.wait("acme/encoder", "1.0.0")
    registry.pull("acme/encoder", "1.0.0", "out/")

The generated client for every endpoint is `kiln_client` (registry.api is one, signed in).
"""

from .errors import DistillationFailedError, IntegrityError, KilnError, ManifestError, PipelineFailedError
from .files import LocalFile, collect, sha256_file
from .manifest import check_files, manifest_files, verify_manifest
from .registry import PulledFile, PullResult, PushResult, Registry, Upload, split_model

__all__ = [
    "DistillationFailedError",
    "IntegrityError",
    "KilnError",
    "LocalFile",
    "ManifestError",
    "PipelineFailedError",
    "PulledFile",
    "PullResult",
    "PushResult",
    "Registry",
    "Upload",
    "check_files",
    "collect",
    "manifest_files",
    "sha256_file",
    "split_model",
    "verify_manifest",
]
