"""The exceptions of the kiln layer: every failure a caller can act on is a KilnError."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx


class KilnError(Exception):
    """A request the server refused, or a check of this layer that failed.

    `code` is the server's stable error code (`not_found`, `version_conflict`, `digest_mismatch`, ...) or one
    of this layer's (`timeout`, `pipeline_failed`, `unsafe_path`, ...); `message` says what to do; `status`
    is the HTTP status when the server answered; `details` carries the server's facts (missing digests, a
    session's offset); `request_id` finds the server's log lines for a 5xx.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.request_id = request_id

    @classmethod
    def from_response(cls, response: httpx.Response) -> KilnError:
        """The error an httpx response carries (read its body first when it was streamed)."""
        return cls.from_parts(
            response.status_code,
            response.content,
            response.headers,
            f"{response.request.method} {response.request.url}",
        )

    @classmethod
    def from_parts(cls, status: int, content: bytes, headers: Mapping[str, str], what: str) -> KilnError:
        """The server's error body (`{"error": {"code", "message", "details"}}`), or the bare status."""
        request_id = headers.get("x-request-id")
        try:
            body = json.loads(content)["error"]
            code, message, details = body["code"], body["message"], body.get("details")
        except (ValueError, KeyError, TypeError):
            # Not kiln's error body (a proxy's page, an empty 404): keep what is known.
            code, message, details = f"http_{int(status)}", f"{what} answered {int(status)}", None
        return cls(code, message, status=int(status), details=details, request_id=request_id)


class PipelineFailedError(KilnError):
    """The version's pipeline settled on `failed`; `details` holds the version (a VersionDetail)."""


class DistillationFailedError(KilnError):
    """A distillation ended `failed` or `cancelled`; `details` holds the job (a Distillation)."""


class IntegrityError(KilnError):
    """Bytes that do not hash to the digest the server or the signed manifest lists (code `digest_mismatch`)."""


class ManifestError(KilnError):
    """A manifest that does not verify: bad signature, unknown key, expired, or for another subject."""
