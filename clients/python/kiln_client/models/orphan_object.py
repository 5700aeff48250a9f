from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="OrphanObject")


@_attrs_define
class OrphanObject:
    """An object in the store that nothing in the database records.

    Attributes:
        key (str): Its key, relative to the store's root.
        last_modified (datetime.datetime):
        removed (bool): Removed by this run (`repair`, and older than the grace period).
        size (int):
    """

    key: str
    last_modified: datetime.datetime
    removed: bool
    size: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        key = self.key

        last_modified = self.last_modified.isoformat()

        removed = self.removed

        size = self.size

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "key": key,
                "last_modified": last_modified,
                "removed": removed,
                "size": size,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        key = d.pop("key")

        last_modified = datetime.datetime.fromisoformat(d.pop("last_modified"))

        removed = d.pop("removed")

        size = d.pop("size")

        orphan_object = cls(
            key=key,
            last_modified=last_modified,
            removed=removed,
            size=size,
        )

        orphan_object.additional_properties = d
        return orphan_object

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
