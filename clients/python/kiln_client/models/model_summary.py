from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.visibility import Visibility
from ..types import UNSET, Unset

T = TypeVar("T", bound="ModelSummary")


@_attrs_define
class ModelSummary:
    """One model in a listing.

    Attributes:
        created_at (datetime.datetime):
        description (str):
        name (str):
        namespace (str):
        tags (list[str]):
        updated_at (datetime.datetime):
        version_count (int):
        visibility (Visibility): Who may read a model: everyone (`public`), or members of its namespace (`private`, the
            default).
        latest_version (None | str | Unset):
    """

    created_at: datetime.datetime
    description: str
    name: str
    namespace: str
    tags: list[str]
    updated_at: datetime.datetime
    version_count: int
    visibility: Visibility
    latest_version: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        description = self.description

        name = self.name

        namespace = self.namespace

        tags = self.tags

        updated_at = self.updated_at.isoformat()

        version_count = self.version_count

        visibility = self.visibility.value

        latest_version: None | str | Unset
        if isinstance(self.latest_version, Unset):
            latest_version = UNSET
        else:
            latest_version = self.latest_version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "description": description,
                "name": name,
                "namespace": namespace,
                "tags": tags,
                "updated_at": updated_at,
                "version_count": version_count,
                "visibility": visibility,
            }
        )
        if latest_version is not UNSET:
            field_dict["latest_version"] = latest_version

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        description = d.pop("description")

        name = d.pop("name")

        namespace = d.pop("namespace")

        tags = cast(list[str], d.pop("tags"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        version_count = d.pop("version_count")

        visibility = Visibility(d.pop("visibility"))

        def _parse_latest_version(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        latest_version = _parse_latest_version(d.pop("latest_version", UNSET))

        model_summary = cls(
            created_at=created_at,
            description=description,
            name=name,
            namespace=namespace,
            tags=tags,
            updated_at=updated_at,
            version_count=version_count,
            visibility=visibility,
            latest_version=latest_version,
        )

        model_summary.additional_properties = d
        return model_summary

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
