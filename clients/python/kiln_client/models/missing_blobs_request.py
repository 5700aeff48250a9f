from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="MissingBlobsRequest")


@_attrs_define
class MissingBlobsRequest:
    """Which of these digests the caller may not use yet (not held, or held only for others): upload those.

    Attributes:
        digests (list[str]): At most 100,000 digests.
    """

    digests: list[str]

    def to_dict(self) -> dict[str, Any]:
        digests = self.digests

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "digests": digests,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        digests = cast(list[str], d.pop("digests"))

        missing_blobs_request = cls(
            digests=digests,
        )

        return missing_blobs_request
