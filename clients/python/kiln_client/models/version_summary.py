from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.version_status import VersionStatus

T = TypeVar("T", bound="VersionSummary")


@_attrs_define
class VersionSummary:
    """
    Attributes:
        created_at (datetime.datetime):
        file_count (int):
        status (VersionStatus): Where a version is in its life: `pending` once committed, `processing` while its files
            are scanned, then
            `ready` as soon as the safety scans pass (the files are stored, versioned and signable; conversion,
            optimization and benchmarks go on after and add variants) or `failed` when a scan refused a file (its
            message says why). The files a user pushed are downloadable in every state.
        total_size (int):
        version (str):
    """

    created_at: datetime.datetime
    file_count: int
    status: VersionStatus
    total_size: int
    version: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        file_count = self.file_count

        status = self.status.value

        total_size = self.total_size

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "file_count": file_count,
                "status": status,
                "total_size": total_size,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        file_count = d.pop("file_count")

        status = VersionStatus(d.pop("status"))

        total_size = d.pop("total_size")

        version = d.pop("version")

        version_summary = cls(
            created_at=created_at,
            file_count=file_count,
            status=status,
            total_size=total_size,
            version=version,
        )

        version_summary.additional_properties = d
        return version_summary

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
