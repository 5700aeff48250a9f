from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="StoreCheckRequest")


@_attrs_define
class StoreCheckRequest:
    """Compare the store with the database.

    Attributes:
        repair (bool | Unset): Delete objects nothing records that are older than the grace period, and mark the
            versions whose
            blobs are missing or wrong as damaged (not served) — or no longer damaged once they are whole.
        verify (bool | Unset): Also read every blob and check its digest (reads the whole store).
    """

    repair: bool | Unset = UNSET
    verify: bool | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        repair = self.repair

        verify = self.verify

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if repair is not UNSET:
            field_dict["repair"] = repair
        if verify is not UNSET:
            field_dict["verify"] = verify

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        repair = d.pop("repair", UNSET)

        verify = d.pop("verify", UNSET)

        store_check_request = cls(
            repair=repair,
            verify=verify,
        )

        return store_check_request
