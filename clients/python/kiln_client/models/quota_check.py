from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.quota import Quota


T = TypeVar("T", bound="QuotaCheck")


@_attrs_define
class QuotaCheck:
    """The push fits. Under a quota, what the namespace would hold after it; without one nothing is
    measured (every push fits) and the three counts are absent.

        Attributes:
            quota (Quota): The most a namespace may hold; an absent limit is no limit.
            added_bytes (int | None | Unset): Bytes the push adds (files the namespace does not hold yet).
            bytes_ (int | None | Unset):
            versions (int | None | Unset):
    """

    quota: Quota
    added_bytes: int | None | Unset = UNSET
    bytes_: int | None | Unset = UNSET
    versions: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        quota = self.quota.to_dict()

        added_bytes: int | None | Unset
        if isinstance(self.added_bytes, Unset):
            added_bytes = UNSET
        else:
            added_bytes = self.added_bytes

        bytes_: int | None | Unset
        if isinstance(self.bytes_, Unset):
            bytes_ = UNSET
        else:
            bytes_ = self.bytes_

        versions: int | None | Unset
        if isinstance(self.versions, Unset):
            versions = UNSET
        else:
            versions = self.versions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "quota": quota,
            }
        )
        if added_bytes is not UNSET:
            field_dict["added_bytes"] = added_bytes
        if bytes_ is not UNSET:
            field_dict["bytes"] = bytes_
        if versions is not UNSET:
            field_dict["versions"] = versions

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.quota import Quota

        d = dict(src_dict)
        quota = Quota.from_dict(d.pop("quota"))

        def _parse_added_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        added_bytes = _parse_added_bytes(d.pop("added_bytes", UNSET))

        def _parse_bytes_(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        bytes_ = _parse_bytes_(d.pop("bytes", UNSET))

        def _parse_versions(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        versions = _parse_versions(d.pop("versions", UNSET))

        quota_check = cls(
            quota=quota,
            added_bytes=added_bytes,
            bytes_=bytes_,
            versions=versions,
        )

        quota_check.additional_properties = d
        return quota_check

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
