from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="RetentionRun")


@_attrs_define
class RetentionRun:
    """Apply a namespace's retention rules now.

    Attributes:
        dry_run (bool | Unset): List what the rules would delete, deleting nothing.
    """

    dry_run: bool | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        dry_run = self.dry_run

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if dry_run is not UNSET:
            field_dict["dry_run"] = dry_run

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        dry_run = d.pop("dry_run", UNSET)

        retention_run = cls(
            dry_run=dry_run,
        )

        return retention_run
