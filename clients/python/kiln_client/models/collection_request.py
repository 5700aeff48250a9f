from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="CollectionRequest")


@_attrs_define
class CollectionRequest:
    """Run garbage collection now.

    Attributes:
        dry_run (bool | Unset): Report what would be deleted, deleting nothing.
        grace_seconds (int | None | Unset): Keep unreferenced blobs recorded (or granted to a pusher) within this many
            seconds, instead of the
            server's grace period (KILN_GC_GRACE_MINUTES). A push in flight is only protected for this long.
    """

    dry_run: bool | Unset = UNSET
    grace_seconds: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        dry_run = self.dry_run

        grace_seconds: int | None | Unset
        if isinstance(self.grace_seconds, Unset):
            grace_seconds = UNSET
        else:
            grace_seconds = self.grace_seconds

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if dry_run is not UNSET:
            field_dict["dry_run"] = dry_run
        if grace_seconds is not UNSET:
            field_dict["grace_seconds"] = grace_seconds

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        dry_run = d.pop("dry_run", UNSET)

        def _parse_grace_seconds(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        grace_seconds = _parse_grace_seconds(d.pop("grace_seconds", UNSET))

        collection_request = cls(
            dry_run=dry_run,
            grace_seconds=grace_seconds,
        )

        return collection_request
