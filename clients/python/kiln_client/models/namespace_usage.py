from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.model_usage import ModelUsage
    from ..models.quota import Quota


T = TypeVar("T", bound="NamespaceUsage")


@_attrs_define
class NamespaceUsage:
    """What a namespace holds in the store, model by model, and its quota.

    Attributes:
        bytes_ (int):
        models (list[ModelUsage]): Largest first.
        namespace (str):
        quota (Quota): The most a namespace may hold; an absent limit is no limit.
        shared_bytes (int):
        unique_bytes (int): Bytes no other namespace holds: what deleting every model in it frees.
        versions (int):
    """

    bytes_: int
    models: list[ModelUsage]
    namespace: str
    quota: Quota
    shared_bytes: int
    unique_bytes: int
    versions: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bytes_ = self.bytes_

        models = []
        for models_item_data in self.models:
            models_item = models_item_data.to_dict()
            models.append(models_item)

        namespace = self.namespace

        quota = self.quota.to_dict()

        shared_bytes = self.shared_bytes

        unique_bytes = self.unique_bytes

        versions = self.versions

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bytes": bytes_,
                "models": models,
                "namespace": namespace,
                "quota": quota,
                "shared_bytes": shared_bytes,
                "unique_bytes": unique_bytes,
                "versions": versions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.model_usage import ModelUsage
        from ..models.quota import Quota

        d = dict(src_dict)
        bytes_ = d.pop("bytes")

        models = []
        _models = d.pop("models")
        for models_item_data in _models:
            models_item = ModelUsage.from_dict(models_item_data)

            models.append(models_item)

        namespace = d.pop("namespace")

        quota = Quota.from_dict(d.pop("quota"))

        shared_bytes = d.pop("shared_bytes")

        unique_bytes = d.pop("unique_bytes")

        versions = d.pop("versions")

        namespace_usage = cls(
            bytes_=bytes_,
            models=models,
            namespace=namespace,
            quota=quota,
            shared_bytes=shared_bytes,
            unique_bytes=unique_bytes,
            versions=versions,
        )

        namespace_usage.additional_properties = d
        return namespace_usage

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
