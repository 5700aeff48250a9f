from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="Quota")


@_attrs_define
class Quota:
    """The most a namespace may hold; an absent limit is no limit.

    Attributes:
        max_bytes (int | None | Unset): Bytes of the distinct blobs its versions and their variants hold.
        max_versions (int | None | Unset):
    """

    max_bytes: int | None | Unset = UNSET
    max_versions: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        max_bytes: int | None | Unset
        if isinstance(self.max_bytes, Unset):
            max_bytes = UNSET
        else:
            max_bytes = self.max_bytes

        max_versions: int | None | Unset
        if isinstance(self.max_versions, Unset):
            max_versions = UNSET
        else:
            max_versions = self.max_versions

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if max_bytes is not UNSET:
            field_dict["max_bytes"] = max_bytes
        if max_versions is not UNSET:
            field_dict["max_versions"] = max_versions

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)

        def _parse_max_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_bytes = _parse_max_bytes(d.pop("max_bytes", UNSET))

        def _parse_max_versions(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_versions = _parse_max_versions(d.pop("max_versions", UNSET))

        quota = cls(
            max_bytes=max_bytes,
            max_versions=max_versions,
        )

        return quota
