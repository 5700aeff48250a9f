from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="CollectionReport")


@_attrs_define
class CollectionReport:
    """What a collection deleted (or, in a dry run, would delete).

    Attributes:
        blobs_deleted (int): Blobs deleted from the store and the database.
        blobs_scanned (int): Blob rows looked at.
        bytes_freed (int): Their bytes.
        deletions_resumed (int): Deletions an earlier run left unfinished (it was stopped mid-sweep), finished by this
            one.
        dry_run (bool):
        duration_ms (int):
        grace_seconds (int):
        started_at (datetime.datetime):
        tar_layers_pruned (int): OCI tar layers of files no version holds any more.
        uploads_aborted (int): Upload sessions (kiln's and OCI's) abandoned for longer than uploads are kept, aborted
            and their
            staged bytes removed.
        versions_retired (int): Versions the retention rules deleted before the sweep (scheduled runs only).
    """

    blobs_deleted: int
    blobs_scanned: int
    bytes_freed: int
    deletions_resumed: int
    dry_run: bool
    duration_ms: int
    grace_seconds: int
    started_at: datetime.datetime
    tar_layers_pruned: int
    uploads_aborted: int
    versions_retired: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        blobs_deleted = self.blobs_deleted

        blobs_scanned = self.blobs_scanned

        bytes_freed = self.bytes_freed

        deletions_resumed = self.deletions_resumed

        dry_run = self.dry_run

        duration_ms = self.duration_ms

        grace_seconds = self.grace_seconds

        started_at = self.started_at.isoformat()

        tar_layers_pruned = self.tar_layers_pruned

        uploads_aborted = self.uploads_aborted

        versions_retired = self.versions_retired

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "blobs_deleted": blobs_deleted,
                "blobs_scanned": blobs_scanned,
                "bytes_freed": bytes_freed,
                "deletions_resumed": deletions_resumed,
                "dry_run": dry_run,
                "duration_ms": duration_ms,
                "grace_seconds": grace_seconds,
                "started_at": started_at,
                "tar_layers_pruned": tar_layers_pruned,
                "uploads_aborted": uploads_aborted,
                "versions_retired": versions_retired,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        blobs_deleted = d.pop("blobs_deleted")

        blobs_scanned = d.pop("blobs_scanned")

        bytes_freed = d.pop("bytes_freed")

        deletions_resumed = d.pop("deletions_resumed")

        dry_run = d.pop("dry_run")

        duration_ms = d.pop("duration_ms")

        grace_seconds = d.pop("grace_seconds")

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        tar_layers_pruned = d.pop("tar_layers_pruned")

        uploads_aborted = d.pop("uploads_aborted")

        versions_retired = d.pop("versions_retired")

        collection_report = cls(
            blobs_deleted=blobs_deleted,
            blobs_scanned=blobs_scanned,
            bytes_freed=bytes_freed,
            deletions_resumed=deletions_resumed,
            dry_run=dry_run,
            duration_ms=duration_ms,
            grace_seconds=grace_seconds,
            started_at=started_at,
            tar_layers_pruned=tar_layers_pruned,
            uploads_aborted=uploads_aborted,
            versions_retired=versions_retired,
        )

        collection_report.additional_properties = d
        return collection_report

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
