from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="Producer")


@_attrs_define
class Producer:
    """The tool that made a version.

    Attributes:
        name (str): E.g. `torchrun`, `kiln-distill`: 1 to 64 characters.
        version (str): E.g. `2.5.1`: 1 to 64 characters.
    """

    name: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        name = d.pop("name")

        version = d.pop("version")

        producer = cls(
            name=name,
            version=version,
        )

        return producer
