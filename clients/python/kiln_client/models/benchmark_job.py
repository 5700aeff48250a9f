from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

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
        batch_sizes (list[int] | Unset): Batch sizes the push asked for (empty: the runner's own).
        engine (str | Unset): The engine to measure with, one the runner registered.
        sequence_lengths (list[int] | Unset): Sequence lengths for token inputs the push asked for (empty: the runner's
            own).
    """

    attempt: int
    files: list[FileEntry]
    job_id: str
    lease_expires_at: datetime.datetime
    model: str
    variant: str
    version: str
    batch_sizes: list[int] | Unset = UNSET
    engine: str | Unset = UNSET
    sequence_lengths: list[int] | Unset = UNSET
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

        batch_sizes: list[int] | Unset = UNSET
        if not isinstance(self.batch_sizes, Unset):
            batch_sizes = self.batch_sizes

        engine = self.engine

        sequence_lengths: list[int] | Unset = UNSET
        if not isinstance(self.sequence_lengths, Unset):
            sequence_lengths = self.sequence_lengths

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
        if batch_sizes is not UNSET:
            field_dict["batch_sizes"] = batch_sizes
        if engine is not UNSET:
            field_dict["engine"] = engine
        if sequence_lengths is not UNSET:
            field_dict["sequence_lengths"] = sequence_lengths

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

        batch_sizes = cast(list[int], d.pop("batch_sizes", UNSET))

        engine = d.pop("engine", UNSET)

        sequence_lengths = cast(list[int], d.pop("sequence_lengths", UNSET))

        benchmark_job = cls(
            attempt=attempt,
            files=files,
            job_id=job_id,
            lease_expires_at=lease_expires_at,
            model=model,
            variant=variant,
            version=version,
            batch_sizes=batch_sizes,
            engine=engine,
            sequence_lengths=sequence_lengths,
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
