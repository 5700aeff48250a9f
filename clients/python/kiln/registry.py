"""Registry: push, wait, pull and verify against a kiln server, on top of the generated client (kiln_client).

The generated client covers each endpoint as the spec declares it; what it cannot express lives here: the
order of the upload protocol and its resumption, streaming downloads with Range and digest checks, the
pipeline's settling, and manifest verification.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from kiln_client import AuthenticatedClient, Client
from kiln_client.api.aliases import set_alias
from kiln_client.api.blobs import commit_upload, create_upload, get_upload, missing_blobs, write_chunk
from kiln_client.api.models import (
    cancel_distillation,
    create_version,
    get_distillation,
    get_version,
    list_models,
    list_versions,
    request_distillation,
)
from kiln_client.models import (
    AliasView,
    CreateUploadRequest,
    CreateVersionRequest,
    Distillation,
    DistillationRequest,
    DistillationState,
    FileEntry,
    LineageRequest,
    MissingBlobsRequest,
    ModelSummary,
    PipelineOptions,
    PipelineOptionsTolerancesType0,
    SetAliasRequest,
    UploadSession,
    VersionDetail,
    VersionStatus,
    VersionSummary,
)
from kiln_client.types import UNSET, File
from kiln_client.types import Response as ApiResponse

from .errors import DistillationFailedError, IntegrityError, KilnError, PipelineFailedError
from .files import LocalFile, check_path, collect, destination, hash_into, partial_path, sha256_file
from .manifest import manifest_files, verify_manifest

# (path, bytes done, bytes in all) after each chunk sent or received. Raising from it stops the transfer,
# leaving what was done so far for the next push or pull to resume.
Progress = Callable[[str, int, int], None]

TARGET_CHUNK = 64 * 1024 * 1024  # rounded to the server's part size, as the CLI does
DOWNLOAD_BLOCK = 256 * 1024
MISSING_BATCH = 100_000  # the most digests one /blobs/missing call takes
TRANSPORT_RETRIES = 3


@dataclass(frozen=True)
class Upload:
    path: str
    digest: str
    size: int
    resumed_from: int  # bytes an earlier, interrupted push had already sent (0: a fresh session)


@dataclass(frozen=True)
class PushResult:
    version: VersionDetail
    created: bool  # False: the version already existed with identical files
    files: list[LocalFile]
    uploads: list[Upload]  # the blobs sent; the others were already usable on the server


@dataclass(frozen=True)
class PulledFile:
    path: str
    target: Path
    size: int
    downloaded: int  # bytes fetched by this pull (0: an identical file was already there)
    resumed_from: int  # bytes a partial file from an interrupted pull already had


@dataclass(frozen=True)
class PullResult:
    version: str
    files: list[PulledFile] = field(default_factory=list)
    manifest: dict[str, Any] | None = None  # the verified manifest, for a pull by alias


class Registry:
    """A kiln server. `token` is an API token (`kiln_...`) or an access token; without one, public reads only."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, verify_ssl: bool = True):
        self.url = url.rstrip("/")
        settings: dict[str, Any] = {
            "base_url": self.url,
            "timeout": httpx.Timeout(timeout, connect=10.0),
            "verify_ssl": verify_ssl,
        }
        # The generated client: typed calls for every endpoint, and the httpx client this layer streams with.
        self.api: AuthenticatedClient | Client = (
            AuthenticatedClient(token=token, **settings) if token else Client(**settings)
        )

    @property
    def http(self) -> httpx.Client:
        return self.api.get_httpx_client()

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Generated endpoints, with refusals turned into KilnError.

    def _call(self, endpoint: ModuleType, *args: Any, **kwargs: Any) -> ApiResponse[Any]:
        response = endpoint.sync_detailed(*args, client=self.api, **kwargs)
        if response.status_code >= 400:
            what = endpoint.__name__.rsplit(".", 1)[-1]
            raise KilnError.from_parts(response.status_code, response.content, response.headers, what)
        return response

    def pages(self, endpoint: ModuleType, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Every item of a generated listing endpoint, following its `Link: <...>; rel="next"` page by page
        (each page is fetched as the iteration reaches it)."""
        cursor: Any = UNSET
        while True:
            response = self._call(endpoint, *args, cursor=cursor, **kwargs)
            yield from response.parsed
            cursor = next_cursor(response.headers.get("link"))
            if cursor is None:
                return

    def models(self, **filters: Any) -> Iterator[ModelSummary]:
        """Every model the caller may see, by namespace and name; filters as `GET /models` takes them
        (`prefix`, `tag`, `q`, `has_variant`)."""
        return self.pages(list_models, **filters)

    def versions(self, model: str) -> Iterator[VersionSummary]:
        """Every version of `model` (`namespace/name`), newest first."""
        namespace, name = split_model(model)
        return self.pages(list_versions, namespace, name)

    def version(self, model: str, version: str) -> VersionDetail:
        """The version as `kiln show --json` prints it: files, status, pipeline jobs, variants."""
        namespace, name = split_model(model)
        return self._call(get_version, namespace, name, version).parsed

    def set_alias(self, model: str, alias: str, version: str) -> AliasView:
        """Points `alias` at a ready version and publishes the alias's next signed manifest."""
        namespace, name = split_model(model)
        return self._call(set_alias, namespace, name, alias, body=SetAliasRequest(version=version)).parsed

    # Pushing.

    def push(
        self,
        folder: str | Path,
        model: str,
        version: str,
        *,
        variants: list[str] | None = None,
        tolerances: dict[str, float] | None = None,
        lineage: dict[str, Any] | LineageRequest | None = None,
        chunk_size: int | None = None,
        on_progress: Progress | None = None,
    ) -> PushResult:
        """Pushes every file under `folder` as `model` (`namespace/model`) version `version`.

        Hashes the files, uploads only the blobs the server asks for (continuing an interrupted upload where
        it stopped), then commits the version. `variants`/`tolerances` choose what the pipeline makes;
        `lineage` says where the version came from (the API's lineage object, as a dict or a LineageRequest:
        `parents`, `datasets`, `training_run`, `producer`, `hyperparameters`).
        """
        lineage = as_lineage(lineage)  # a malformed dict fails here, before anything is uploaded
        files = collect(Path(folder))
        first_by_digest = {}
        for file in files:
            first_by_digest.setdefault(file.digest, file)
        missing = self.missing_blobs(list(first_by_digest))
        uploads = [
            upload
            for digest in missing
            if (upload := self.upload_blob(first_by_digest[digest], chunk_size=chunk_size, on_progress=on_progress))
        ]
        detail, created = self.commit_version(
            model, version, files, variants=variants, tolerances=tolerances, lineage=lineage
        )
        return PushResult(version=detail, created=created, files=files, uploads=uploads)

    def missing_blobs(self, digests: list[str]) -> list[str]:
        """The digests the caller may not use yet: upload those."""
        missing: list[str] = []
        for start in range(0, len(digests), MISSING_BATCH):
            body = MissingBlobsRequest(digests=digests[start : start + MISSING_BATCH])
            missing += self._call(missing_blobs, body=body).parsed.missing
        return missing

    def upload_blob(
        self, file: LocalFile, *, chunk_size: int | None = None, on_progress: Progress | None = None
    ) -> Upload | None:
        """Uploads one blob through a session (resuming the caller's unfinished one); None when the server
        already lets the caller use it."""
        response = create_upload.sync_detailed(
            client=self.api, body=CreateUploadRequest(digest=file.digest, size=file.size)
        )
        if response.status_code >= 400:
            error = KilnError.from_parts(response.status_code, response.content, response.headers, "create_upload")
            if error.code == "blob_exists":  # uploaded since the missing-blobs answer
                return None
            raise error
        session: UploadSession = response.parsed
        resumed_from = session.offset if session.resumed else 0
        chunk = chunk_length(session.part_size, chunk_size)
        with open(file.source, "rb") as source:
            while session.offset < session.size:
                session = self._send_chunk(source, session, chunk)
                if on_progress:
                    on_progress(file.path, session.offset, session.size)
        try:
            self._call(commit_upload, session.id)
        except KilnError as e:
            if e.code == "digest_mismatch":
                raise IntegrityError(
                    e.code, f"{file.path}: {e.message}; did the file change while pushing? Push again", status=e.status
                ) from None
            raise
        return Upload(path=file.path, digest=file.digest, size=file.size, resumed_from=resumed_from)

    def _send_chunk(self, source: Any, session: UploadSession, chunk: int) -> UploadSession:
        """Sends the next chunk from the session's offset; the session as the server then has it."""
        for attempt in range(TRANSPORT_RETRIES):
            source.seek(session.offset)
            data = source.read(min(chunk, session.size - session.offset))
            content_range = f"bytes {session.offset}-{session.offset + len(data) - 1}/{session.size}"
            try:
                return self._call(write_chunk, session.id, body=File(payload=data), content_range=content_range).parsed
            except KilnError as e:
                if e.code == "upload_busy":
                    # Another request holds the session (a server restarted mid-chunk lets go of it within
                    # seconds): wait as told rather than send the bytes again at once.
                    retry_after = (e.details or {}).get("retry_after", 1)
                    time.sleep(min(max(float(retry_after), 1.0), 30.0))
                elif e.code != "offset_mismatch":
                    raise
                # Another push of the same file moved the session on: continue from where it is now.
            except httpx.TransportError:
                # A chunk that did not arrive whole is not recorded; ask where the session is and go on.
                if attempt == TRANSPORT_RETRIES - 1:
                    raise
            session = self._call(get_upload, session.id).parsed
        return session

    def commit_version(
        self,
        model: str,
        version: str,
        files: list[LocalFile],
        *,
        variants: list[str] | None = None,
        tolerances: dict[str, float] | None = None,
        lineage: dict[str, Any] | LineageRequest | None = None,
    ) -> tuple[VersionDetail, bool]:
        """Commits the version from uploaded blobs: (the version, True when created, False when identical).
        With `lineage`, the server records where the version came from (a re-commit must state the same)."""
        namespace, name = split_model(model)
        pipeline = UNSET
        if variants is not None or tolerances is not None:
            pipeline = PipelineOptions(
                variants=variants if variants is not None else UNSET,
                tolerances=PipelineOptionsTolerancesType0.from_dict(tolerances) if tolerances else UNSET,
            )
        body = CreateVersionRequest(
            version=version,
            files=[FileEntry(path=f.path, digest=f.digest, size=f.size) for f in files],
            pipeline=pipeline,
            lineage=as_lineage(lineage) or UNSET,
        )
        response = self._call(create_version, namespace, name, body=body)
        return response.parsed, response.status_code == 201

    # Waiting.

    def wait(self, model: str, version: str, *, timeout: float = 600.0, interval: float = 0.5) -> VersionDetail:
        """Polls the version until its pipeline settled: `ready` with no scan, convert or optimize job queued
        or running (benchmarks wait for runners and are not waited for), or `failed` (PipelineFailedError)."""
        deadline = time.monotonic() + timeout
        while True:
            detail = self.version(model, version)
            if detail.status == VersionStatus.FAILED:
                raise PipelineFailedError(
                    "pipeline_failed",
                    f"{model}:{version}: the pipeline failed: {failure_reason(detail)}",
                    details=detail,
                )
            if detail.status == VersionStatus.READY and not busy_jobs(detail):
                return detail
            if time.monotonic() > deadline:
                raise KilnError(
                    "timeout",
                    f"{model}:{version} is still {detail.status.value} after {timeout:g} s "
                    f"(busy: {', '.join(busy_jobs(detail)) or 'none'}); wait again or look at the server's log",
                    details=detail,
                )
            time.sleep(interval)

    # Distilling.

    def distill(self, teacher: str, into: str, **knobs: Any) -> Distillation:
        """Queues a distillation of `teacher` (`namespace/model:version`) into the new version `into`, with
        the knobs `DistillationRequest` names (`student="layers=6"`, `data`, `steps`, `device`, ...)."""
        model, _, version = teacher.rpartition(":")
        namespace, name = split_model(model)
        body = DistillationRequest(into=into, **knobs)
        return self._call(request_distillation, namespace, name, version, body=body).parsed

    def distillation(self, id: str) -> Distillation:
        """The job: state, progress while it runs, report and comparison once it succeeded."""
        return self._call(get_distillation, id).parsed

    def cancel_distillation(self, id: str) -> Distillation:
        return self._call(cancel_distillation, id).parsed

    def wait_distillation(
        self,
        id: str,
        *,
        timeout: float = 3600.0,
        interval: float = 2.0,
        progress: Callable[[Distillation], None] | None = None,
    ) -> Distillation:
        """Polls the job until it ends: returns it once `succeeded` (its student committed, at `into`);
        raises DistillationFailedError when it failed or was cancelled. `progress` sees every poll."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.distillation(id)
            if progress is not None:
                progress(job)
            if job.state == DistillationState.SUCCEEDED:
                return job
            if job.state in (DistillationState.FAILED, DistillationState.CANCELLED):
                message = job.message if isinstance(job.message, str) else ""
                raise DistillationFailedError(f"distillation_{job.state.value}", f"distillation {id}: {message}", details=job)
            if time.monotonic() > deadline:
                raise KilnError("timeout", f"distillation {id} is still {job.state.value} after {timeout:g} s", details=job)
            time.sleep(interval)

    # Pulling.

    def pull(
        self,
        model: str,
        version: str,
        folder: str | Path,
        *,
        variant: str | None = None,
        on_progress: Progress | None = None,
    ) -> PullResult:
        """Downloads a version's pushed files (or a variant's) into `folder`, each checked against its digest.

        A file already there with the right digest is not fetched again; a `.kiln-partial` file left by an
        interrupted pull is continued with a Range request.
        """
        detail = self.version(model, version)
        if variant is None:
            files = detail.files
        else:
            found = [v for v in (detail.variants or []) if v.name == variant]
            if not found:
                names = ", ".join(v.name for v in (detail.variants or [])) or "none"
                raise KilnError(
                    "no_such_variant",
                    f"{model}:{version} has no variant {variant!r} (variants: {names}; status {detail.status.value})",
                )
            files = found[0].files
        base = self._files_url(model, version, variant)
        pulled = [
            self._download(base, f.path, f.digest, f.size, Path(folder), on_progress, "the server lists") for f in files
        ]
        return PullResult(version=version, files=pulled)

    def pull_alias(
        self,
        model: str,
        alias: str,
        folder: str | Path,
        *,
        variant: str | None = None,
        jwks: Any = None,
        on_progress: Progress | None = None,
    ) -> PullResult:
        """Pulls what `model@alias` names, trusting only its signed manifest: the version, the file list and
        every digest come from the verified manifest (`jwks`: URL or key set; this server's by default)."""
        manifest = self.verify_manifest(model, alias=alias, jwks=jwks)
        base = self._files_url(model, manifest["version"], variant)
        pulled = [
            self._download(
                base, f["path"], f["sha256"], f["size"], Path(folder), on_progress, "the signed manifest lists"
            )
            for f in manifest_files(manifest, variant)
        ]
        return PullResult(version=manifest["version"], files=pulled, manifest=manifest)

    def _files_url(self, model: str, version: str, variant: str | None) -> str:
        namespace, name = split_model(model)
        url = f"/api/v1/models/{quote(namespace)}/{quote(name)}/versions/{quote(version, safe='')}"
        if variant is not None:
            url += f"/variants/{quote(variant, safe='')}"
        return url + "/files/"

    def _download(
        self, base: str, path: str, digest: str, size: int, folder: Path, on_progress: Progress | None, source: str
    ) -> PulledFile:
        target = destination(folder, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.stat().st_size == size and sha256_file(target) == digest:
            return PulledFile(path=path, target=target, size=size, downloaded=0, resumed_from=0)
        partial = partial_path(target)
        hasher, have = hashlib.sha256(), 0
        if partial.is_file() and partial.stat().st_size <= size:
            have = hash_into(partial, hasher)
            if have == size and "sha256:" + hasher.hexdigest() != digest:
                hasher, have = hashlib.sha256(), 0  # whole but wrong (the file changed since): fetch it again
        resumed_from = have
        if have < size or not partial.is_file():  # an empty file has no bytes to fetch, but a GET makes it
            # The path's segments are percent-encoded one by one; `/` stays a separator.
            url = base + quote(check_path(path), safe="/")
            hasher, have = self._stream_into(url, partial, hasher, have, size, path, on_progress)
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            partial.unlink(missing_ok=True)
            raise IntegrityError(
                "digest_mismatch",
                f"{path}: downloaded bytes hash to {actual}, but {source} {digest}; the file was discarded",
            )
        os.replace(partial, target)
        return PulledFile(
            path=path, target=target, size=size, downloaded=size - resumed_from, resumed_from=resumed_from
        )

    def _stream_into(
        self, url: str, partial: Path, hasher: Any, have: int, size: int, path: str, on_progress: Progress | None
    ) -> tuple[Any, int]:
        """Appends the bytes from `have` on to the partial file; (the hash of all of it, its length)."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise KilnError.from_response(response)
            if have and response.status_code != 206:
                hasher, have = hashlib.sha256(), 0  # the whole file came after all: start over
            with open(partial, "ab" if have else "wb") as out:
                for block in response.iter_bytes(DOWNLOAD_BLOCK):
                    have += len(block)
                    if have > size:
                        out.close()
                        partial.unlink(missing_ok=True)
                        raise IntegrityError(
                            "body_too_long", f"{path}: the server sent more than the {size} bytes listed"
                        )
                    hasher.update(block)
                    out.write(block)
                    if on_progress:
                        on_progress(path, have, size)
        if have != size:
            raise KilnError("truncated_body", f"{path}: received {have} of {size} bytes; pull again to resume")
        return hasher, have

    # Manifests.

    def manifest_jws(
        self, model: str, *, version: str | None = None, alias: str | None = None, sequence: int | None = None
    ) -> str:
        """The compact JWS of a version's or an alias's newest manifest (or the one with `sequence`)."""
        namespace, name = split_model(model)
        if (version is None) == (alias is None):
            raise KilnError("invalid_request", "name either a version or an alias")
        kind, subject = ("aliases", alias) if alias is not None else ("versions", version)
        url = f"/api/v1/models/{quote(namespace)}/{quote(name)}/{kind}/{quote(subject, safe='')}/"
        url += f"manifests/{sequence}" if sequence is not None else "manifest"
        response = self.http.get(url, headers={"Accept": "application/jose"})
        if response.status_code >= 400:
            raise KilnError.from_response(response)
        return response.text.strip()

    def verify_manifest(
        self,
        model: str,
        *,
        version: str | None = None,
        alias: str | None = None,
        jwks: Any = None,
        min_sequence: int | None = None,
        issuer: str | None = None,
    ) -> dict[str, Any]:
        """Fetches a version's or an alias's newest manifest and verifies it (kiln.verify_manifest)."""
        jws = self.manifest_jws(model, version=version, alias=alias)
        return verify_manifest(
            jws,
            jwks or self.jwks_url,
            model=model,
            version=version,
            alias=alias,
            min_sequence=min_sequence,
            issuer=issuer,
        )


def next_cursor(link: str | None) -> str | None:
    """The `cursor` of a `Link: <URL>; rel="next"` header (RFC 8288), when there is one."""
    for part in (link or "").split(","):
        target, _, params = part.strip().partition(";")
        if target.startswith("<") and target.endswith(">") and 'rel="next"' in params.replace(" ", ""):
            cursors = parse_qs(urlsplit(target[1:-1]).query).get("cursor")
            if cursors:
                return cursors[0]
    return None


def as_lineage(lineage: dict[str, Any] | LineageRequest | None) -> LineageRequest | None:
    """The API's lineage object as the generated model. A dict must read back whole: the generated model
    drops keys it does not know, and a misspelt `training_run` must not vanish without a word."""
    if lineage is None or isinstance(lineage, LineageRequest):
        return lineage
    try:
        parsed = LineageRequest.from_dict(lineage)
    except (AttributeError, KeyError, TypeError) as e:
        raise KilnError("invalid_lineage", f"lineage is not the API's lineage object: {e!r}") from None
    unknown = unknown_keys(lineage, parsed.to_dict(), "lineage")
    if unknown:
        raise KilnError(
            "invalid_lineage",
            f"unknown field(s) {', '.join(unknown)}: a lineage takes parents, datasets, training_run, producer "
            'and hyperparameters (docs/api.md, "Lineage")',
        )
    return parsed


def unknown_keys(given: Any, kept: Any, path: str) -> list[str]:
    """The keys of `given` (nested) that are not in `kept`, as `lineage.parents[0].why` paths."""
    if isinstance(given, Mapping) and isinstance(kept, Mapping):
        return [
            found
            for key, value in given.items()
            for found in (
                [f"{path}.{key}"] if key not in kept else unknown_keys(value, kept[key], f"{path}.{key}")
            )
        ]
    if isinstance(given, list) and isinstance(kept, list):
        return [found for i, pair in enumerate(zip(given, kept)) for found in unknown_keys(*pair, f"{path}[{i}]")]
    return []


def split_model(model: str) -> tuple[str, str]:
    """`namespace/model` as its two names."""
    namespace, slash, name = model.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise KilnError("invalid_name", f"name a model as NAMESPACE/MODEL, e.g. acme/sentiment (got {model!r})")
    return namespace, name


def chunk_length(part_size: int, requested: int | None) -> int:
    """Chunks are whole multiples of the server's part size (only the last may be shorter)."""
    wanted = requested or TARGET_CHUNK
    if wanted <= 0:
        raise KilnError("invalid_request", "chunk_size must be positive")
    return max(wanted // part_size, 1) * part_size


def busy_jobs(detail: VersionDetail) -> list[str]:
    """The scan, convert and optimize jobs still queued or running (benchmarks wait for runners)."""
    return [
        job.kind
        for job in (detail.pipeline or [])
        if job.kind != "benchmark" and job.state.value in ("queued", "running")
    ]


def failure_reason(detail: VersionDetail) -> str:
    failed = [job for job in (detail.pipeline or []) if job.state.value == "failed"]
    if not failed:
        return "no job says why"
    return "; ".join(f"{job.kind}: {job.message or 'no message'}" for job in failed)
