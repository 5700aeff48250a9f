from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="ModelUsage")


@_attrs_define
class ModelUsage:
    """What a model holds in the store.

    Attributes:
        bytes_ (int): Bytes of the distinct blobs its versions and variants hold.
        model (str):
        shared_bytes (int): The bytes it shares with other models (kept when it is deleted).
        unique_bytes (int): Of those, the bytes no other model holds: what deleting the model frees.
        versions (int):
    """

    bytes_: int
    model: str
    shared_bytes: int
    unique_bytes: int
    versions: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bytes_ = self.bytes_

        model = self.model

        shared_bytes = self.shared_bytes

        unique_bytes = self.unique_bytes

        versions = self.versions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bytes": bytes_,
                "model": model,
                "shared_bytes": shared_bytes,
                "unique_bytes": unique_bytes,
                "versions": versions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        bytes_ = d.pop("bytes")

        model = d.pop("model")

        shared_bytes = d.pop("shared_bytes")

        unique_bytes = d.pop("unique_bytes")

        versions = d.pop("versions")

        model_usage = cls(
            bytes_=bytes_,
            model=model,
            shared_bytes=shared_bytes,
            unique_bytes=unique_bytes,
            versions=versions,
        )

        model_usage.additional_properties = d
        return model_usage

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
