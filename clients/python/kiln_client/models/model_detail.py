from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.visibility import Visibility

if TYPE_CHECKING:
    from ..models.version_summary import VersionSummary


T = TypeVar("T", bound="ModelDetail")


@_attrs_define
class ModelDetail:
    """A model and its versions, newest first.

    Attributes:
        created_at (datetime.datetime):
        description (str):
        name (str):
        namespace (str):
        tags (list[str]):
        updated_at (datetime.datetime):
        version_count (int): How many versions the model has.
        versions (list[VersionSummary]): The newest versions, newest first: at most [`ModelDetail::VERSIONS_SHOWN`]; the
            rest are a page
            at a time at `GET /models/{namespace}/{model}/versions`.
        visibility (Visibility): Who may read a model: everyone (`public`), or members of its namespace (`private`, the
            default).
    """

    created_at: datetime.datetime
    description: str
    name: str
    namespace: str
    tags: list[str]
    updated_at: datetime.datetime
    version_count: int
    versions: list[VersionSummary]
    visibility: Visibility
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        description = self.description

        name = self.name

        namespace = self.namespace

        tags = self.tags

        updated_at = self.updated_at.isoformat()

        version_count = self.version_count

        versions = []
        for versions_item_data in self.versions:
            versions_item = versions_item_data.to_dict()
            versions.append(versions_item)

        visibility = self.visibility.value

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
                "versions": versions,
                "visibility": visibility,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.version_summary import VersionSummary

        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        description = d.pop("description")

        name = d.pop("name")

        namespace = d.pop("namespace")

        tags = cast(list[str], d.pop("tags"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        version_count = d.pop("version_count")

        versions = []
        _versions = d.pop("versions")
        for versions_item_data in _versions:
            versions_item = VersionSummary.from_dict(versions_item_data)

            versions.append(versions_item)

        visibility = Visibility(d.pop("visibility"))

        model_detail = cls(
            created_at=created_at,
            description=description,
            name=name,
            namespace=namespace,
            tags=tags,
            updated_at=updated_at,
            version_count=version_count,
            versions=versions,
            visibility=visibility,
        )

        model_detail.additional_properties = d
        return model_detail

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
