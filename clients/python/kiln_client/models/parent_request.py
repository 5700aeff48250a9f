from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ParentRequest")


@_attrs_define
class ParentRequest:
    """A version this one was made from.

    Attributes:
        reference (str): The version, `namespace/model:version`; the pusher must be able to read it.
        role (str): What it was to this version: `teacher`, `base`, `source`, `fine-tuned-from`, ... (1-32 characters:
            lowercase letters, digits, `-` and `_`, starting with a letter).
    """

    reference: str
    role: str

    def to_dict(self) -> dict[str, Any]:
        reference = self.reference

        role = self.role

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "reference": reference,
                "role": role,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        reference = d.pop("reference")

        role = d.pop("role")

        parent_request = cls(
            reference=reference,
            role=role,
        )

        return parent_request
