from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.distillation_progress import DistillationProgress


T = TypeVar("T", bound="RunnerHeartbeat")


@_attrs_define
class RunnerHeartbeat:
    """
    Attributes:
        job_id (None | str | Unset): The job being worked on, whose lease this extends.
        progress (DistillationProgress | None | Unset):
    """

    job_id: None | str | Unset = UNSET
    progress: DistillationProgress | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.distillation_progress import DistillationProgress

        job_id: None | str | Unset
        if isinstance(self.job_id, Unset):
            job_id = UNSET
        else:
            job_id = self.job_id

        progress: dict[str, Any] | None | Unset
        if isinstance(self.progress, Unset):
            progress = UNSET
        elif isinstance(self.progress, DistillationProgress):
            progress = self.progress.to_dict()
        else:
            progress = self.progress

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if job_id is not UNSET:
            field_dict["job_id"] = job_id
        if progress is not UNSET:
            field_dict["progress"] = progress

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.distillation_progress import DistillationProgress

        d = dict(src_dict)

        def _parse_job_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_id = _parse_job_id(d.pop("job_id", UNSET))

        def _parse_progress(data: object) -> DistillationProgress | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                progress_type_0 = DistillationProgress.from_dict(data)

                return progress_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DistillationProgress | None | Unset, data)

        progress = _parse_progress(d.pop("progress", UNSET))

        runner_heartbeat = cls(
            job_id=job_id,
            progress=progress,
        )

        return runner_heartbeat
