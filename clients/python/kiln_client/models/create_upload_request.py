from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="CreateUploadRequest")


@_attrs_define
class CreateUploadRequest:
    """Start (or resume) uploading one blob. When an unfinished session for the same digest and size exists,
    the server returns it, with its offset, instead of starting over.

        Attributes:
            digest (str): sha256 content digest
            size (int): The blob's size in bytes, 0 to 5 TiB.
    """

    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        digest = self.digest

        size = self.size

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "digest": digest,
                "size": size,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        digest = d.pop("digest")

        size = d.pop("size")

        create_upload_request = cls(
            digest=digest,
            size=size,
        )

        return create_upload_request
