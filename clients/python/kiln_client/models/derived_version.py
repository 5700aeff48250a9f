from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.lineage_link import LineageLink

T = TypeVar("T", bound="DerivedVersion")


@_attrs_define
class DerivedVersion:
    """A version whose lineage names this one.

    Attributes:
        link (LineageLink): How a derived version names this one.
        reference (str): `namespace/model:version`.
        role (str): The parent's role (`teacher`, `base`, ...); `dataset` for a dataset.
    """

    link: LineageLink
    reference: str
    role: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        link = self.link.value

        reference = self.reference

        role = self.role

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "link": link,
                "reference": reference,
                "role": role,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        link = LineageLink(d.pop("link"))

        reference = d.pop("reference")

        role = d.pop("role")

        derived_version = cls(
            link=link,
            reference=reference,
            role=role,
        )

        derived_version.additional_properties = d
        return derived_version

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
