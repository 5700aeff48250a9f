from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.distillation_request import DistillationRequest
    from ..models.file_entry import FileEntry


T = TypeVar("T", bound="DistillationJob")


@_attrs_define
class DistillationJob:
    """A claimed distillation, as a runner gets it.

    Attributes:
        attempt (int):
        job_id (str):
        lease_expires_at (datetime.datetime):
        request (DistillationRequest): `POST /api/v1/models/{namespace}/{model}/versions/{version}/distillations`:
            distill that version.
        teacher (str): The teacher, `namespace/model:version`.
        teacher_files (list[FileEntry]): The teacher's files; fetch each from
            `/api/v1/runners/{runner}/distillations/{job}/teacher/{path}`.
        checkpoint_step (int | None | Unset): The step of the training state kept by the server, to resume from
            (`GET /api/v1/runners/{runner}/distillations/{job}/checkpoint`); none: start from the teacher.
        data (None | str | Unset): The dataset version, when the request named one.
        data_files (list[FileEntry] | Unset): Its files; fetch each from
            `/api/v1/runners/{runner}/distillations/{job}/data/{path}`.
    """

    attempt: int
    job_id: str
    lease_expires_at: datetime.datetime
    request: DistillationRequest
    teacher: str
    teacher_files: list[FileEntry]
    checkpoint_step: int | None | Unset = UNSET
    data: None | str | Unset = UNSET
    data_files: list[FileEntry] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        attempt = self.attempt

        job_id = self.job_id

        lease_expires_at = self.lease_expires_at.isoformat()

        request = self.request.to_dict()

        teacher = self.teacher

        teacher_files = []
        for teacher_files_item_data in self.teacher_files:
            teacher_files_item = teacher_files_item_data.to_dict()
            teacher_files.append(teacher_files_item)

        checkpoint_step: int | None | Unset
        if isinstance(self.checkpoint_step, Unset):
            checkpoint_step = UNSET
        else:
            checkpoint_step = self.checkpoint_step

        data: None | str | Unset
        if isinstance(self.data, Unset):
            data = UNSET
        else:
            data = self.data

        data_files: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.data_files, Unset):
            data_files = []
            for data_files_item_data in self.data_files:
                data_files_item = data_files_item_data.to_dict()
                data_files.append(data_files_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempt": attempt,
                "job_id": job_id,
                "lease_expires_at": lease_expires_at,
                "request": request,
                "teacher": teacher,
                "teacher_files": teacher_files,
            }
        )
        if checkpoint_step is not UNSET:
            field_dict["checkpoint_step"] = checkpoint_step
        if data is not UNSET:
            field_dict["data"] = data
        if data_files is not UNSET:
            field_dict["data_files"] = data_files

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.distillation_request import DistillationRequest
        from ..models.file_entry import FileEntry

        d = dict(src_dict)
        attempt = d.pop("attempt")

        job_id = d.pop("job_id")

        lease_expires_at = datetime.datetime.fromisoformat(d.pop("lease_expires_at"))

        request = DistillationRequest.from_dict(d.pop("request"))

        teacher = d.pop("teacher")

        teacher_files = []
        _teacher_files = d.pop("teacher_files")
        for teacher_files_item_data in _teacher_files:
            teacher_files_item = FileEntry.from_dict(teacher_files_item_data)

            teacher_files.append(teacher_files_item)

        def _parse_checkpoint_step(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        checkpoint_step = _parse_checkpoint_step(d.pop("checkpoint_step", UNSET))

        def _parse_data(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        data = _parse_data(d.pop("data", UNSET))

        _data_files = d.pop("data_files", UNSET)
        data_files: list[FileEntry] | Unset = UNSET
        if _data_files is not UNSET:
            data_files = []
            for data_files_item_data in _data_files:
                data_files_item = FileEntry.from_dict(data_files_item_data)

                data_files.append(data_files_item)

        distillation_job = cls(
            attempt=attempt,
            job_id=job_id,
            lease_expires_at=lease_expires_at,
            request=request,
            teacher=teacher,
            teacher_files=teacher_files,
            checkpoint_step=checkpoint_step,
            data=data,
            data_files=data_files,
        )

        distillation_job.additional_properties = d
        return distillation_job

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
