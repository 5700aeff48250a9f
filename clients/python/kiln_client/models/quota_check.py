from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.quota import Quota


T = TypeVar("T", bound="QuotaCheck")


@_attrs_define
class QuotaCheck:
    """The push fits: what the namespace would hold after it.

    Attributes:
        added_bytes (int): Bytes the push adds (files the namespace does not hold yet).
        bytes_ (int):
        quota (Quota): The most a namespace may hold; an absent limit is no limit.
        versions (int):
    """

    added_bytes: int
    bytes_: int
    quota: Quota
    versions: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        added_bytes = self.added_bytes

        bytes_ = self.bytes_

        quota = self.quota.to_dict()

        versions = self.versions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "added_bytes": added_bytes,
                "bytes": bytes_,
                "quota": quota,
                "versions": versions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.quota import Quota

        d = dict(src_dict)
        added_bytes = d.pop("added_bytes")

        bytes_ = d.pop("bytes")

        quota = Quota.from_dict(d.pop("quota"))

        versions = d.pop("versions")

        quota_check = cls(
            added_bytes=added_bytes,
            bytes_=bytes_,
            quota=quota,
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
