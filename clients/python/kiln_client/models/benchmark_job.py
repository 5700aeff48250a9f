from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.file_entry import FileEntry


T = TypeVar("T", bound="BenchmarkJob")


@_attrs_define
class BenchmarkJob:
    """A claimed benchmark job: measure `variant` of `model:version`, whose files are listed with digests.

    Attributes:
        attempt (int): 1 for the first try; more when an earlier runner lost the job.
        files (list[FileEntry]): The model file first, then its external-data files; fetch each from
            `/api/v1/runners/{runner}/jobs/{job}/files/{path}` and check its digest.
        job_id (str):
        lease_expires_at (datetime.datetime):
        model (str): `namespace/model`.
        variant (str):
        version (str):
    """

    attempt: int
    files: list[FileEntry]
    job_id: str
    lease_expires_at: datetime.datetime
    model: str
    variant: str
    version: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attempt = self.attempt

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        job_id = self.job_id

        lease_expires_at = self.lease_expires_at.isoformat()

        model = self.model

        variant = self.variant

        version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempt": attempt,
                "files": files,
                "job_id": job_id,
                "lease_expires_at": lease_expires_at,
                "model": model,
                "variant": variant,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.file_entry import FileEntry

        d = dict(src_dict)
        attempt = d.pop("attempt")

        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileEntry.from_dict(files_item_data)

            files.append(files_item)

        job_id = d.pop("job_id")

        lease_expires_at = datetime.datetime.fromisoformat(d.pop("lease_expires_at"))

        model = d.pop("model")

        variant = d.pop("variant")

        version = d.pop("version")

        benchmark_job = cls(
            attempt=attempt,
            files=files,
            job_id=job_id,
            lease_expires_at=lease_expires_at,
            model=model,
            variant=variant,
            version=version,
        )

        benchmark_job.additional_properties = d
        return benchmark_job

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
