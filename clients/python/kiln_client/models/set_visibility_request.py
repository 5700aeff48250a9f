from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..models.visibility import Visibility

T = TypeVar("T", bound="SetVisibilityRequest")


@_attrs_define
class SetVisibilityRequest:
    """
    Attributes:
        visibility (Visibility): Who may read a model: everyone (`public`), or members of its namespace (`private`, the
            default).
    """

    visibility: Visibility

    def to_dict(self) -> dict[str, Any]:
        visibility = self.visibility.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "visibility": visibility,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        visibility = Visibility(d.pop("visibility"))

        set_visibility_request = cls(
            visibility=visibility,
        )

        return set_visibility_request
