from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="QuotaCheckFile")


@_attrs_define
class QuotaCheckFile:
    """
    Attributes:
        digest (str): sha256 content digest
        size (int):
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

        quota_check_file = cls(
            digest=digest,
            size=size,
        )

        return quota_check_file
