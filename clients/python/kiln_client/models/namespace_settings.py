from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="NamespaceSettings")


@_attrs_define
class NamespaceSettings:
    """What a namespace's admins decide for every model in it.

    Attributes:
        store_unsafe_pickles (bool): Store pickles whose globals fall outside the scan's allowlist ("store only, never
            load") instead of
            refusing the version: they are flagged on the version, in `kiln show` and in the manifest, and
            kiln never converts or opens them. Off by default.
    """

    store_unsafe_pickles: bool
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        store_unsafe_pickles = self.store_unsafe_pickles

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "store_unsafe_pickles": store_unsafe_pickles,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        store_unsafe_pickles = d.pop("store_unsafe_pickles")

        namespace_settings = cls(
            store_unsafe_pickles=store_unsafe_pickles,
        )

        namespace_settings.additional_properties = d
        return namespace_settings

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
