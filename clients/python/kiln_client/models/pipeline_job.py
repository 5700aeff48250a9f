from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.job_state import JobState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.pipeline_job_report_type_0 import PipelineJobReportType0


T = TypeVar("T", bound="PipelineJob")


@_attrs_define
class PipelineJob:
    """One step of a version's pipeline (`scan`, then `convert`), as `kiln show REF --json` lists it.

    Attributes:
        attempts (int): Tries so far, out of `max_attempts` (a worker that dies mid-job costs one).
        created_at (datetime.datetime):
        kind (str):
        max_attempts (int):
        state (JobState): A pipeline job's state.
        device (None | str | Unset):
        engine (None | str | Unset):
        finished_at (datetime.datetime | None | Unset):
        message (None | str | Unset): Why the job failed, in words a user can act on.
        report (None | PipelineJobReportType0 | Unset): What the job found or did (formats detected, findings,
            validation numbers).
        started_at (datetime.datetime | None | Unset):
        variant (None | str | Unset): For `benchmark` jobs: the variant measured, the device class (`cpu`, `cuda`) and
            the engine
            (`kiln`, `onnxruntime`).
    """

    attempts: int
    created_at: datetime.datetime
    kind: str
    max_attempts: int
    state: JobState
    device: None | str | Unset = UNSET
    engine: None | str | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    message: None | str | Unset = UNSET
    report: None | PipelineJobReportType0 | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    variant: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.pipeline_job_report_type_0 import PipelineJobReportType0

        attempts = self.attempts

        created_at = self.created_at.isoformat()

        kind = self.kind

        max_attempts = self.max_attempts

        state = self.state.value

        device: None | str | Unset
        if isinstance(self.device, Unset):
            device = UNSET
        else:
            device = self.device

        engine: None | str | Unset
        if isinstance(self.engine, Unset):
            engine = UNSET
        else:
            engine = self.engine

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        message: None | str | Unset
        if isinstance(self.message, Unset):
            message = UNSET
        else:
            message = self.message

        report: dict[str, Any] | None | Unset
        if isinstance(self.report, Unset):
            report = UNSET
        elif isinstance(self.report, PipelineJobReportType0):
            report = self.report.to_dict()
        else:
            report = self.report

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        variant: None | str | Unset
        if isinstance(self.variant, Unset):
            variant = UNSET
        else:
            variant = self.variant

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempts": attempts,
                "created_at": created_at,
                "kind": kind,
                "max_attempts": max_attempts,
                "state": state,
            }
        )
        if device is not UNSET:
            field_dict["device"] = device
        if engine is not UNSET:
            field_dict["engine"] = engine
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if message is not UNSET:
            field_dict["message"] = message
        if report is not UNSET:
            field_dict["report"] = report
        if started_at is not UNSET:
            field_dict["started_at"] = started_at
        if variant is not UNSET:
            field_dict["variant"] = variant

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.pipeline_job_report_type_0 import PipelineJobReportType0

        d = dict(src_dict)
        attempts = d.pop("attempts")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        kind = d.pop("kind")

        max_attempts = d.pop("max_attempts")

        state = JobState(d.pop("state"))

        def _parse_device(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        device = _parse_device(d.pop("device", UNSET))

        def _parse_engine(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        engine = _parse_engine(d.pop("engine", UNSET))

        def _parse_finished_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        finished_at = _parse_finished_at(d.pop("finished_at", UNSET))

        def _parse_message(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        message = _parse_message(d.pop("message", UNSET))

        def _parse_report(data: object) -> None | PipelineJobReportType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                report_type_0 = PipelineJobReportType0.from_dict(data)

                return report_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PipelineJobReportType0 | Unset, data)

        report = _parse_report(d.pop("report", UNSET))

        def _parse_started_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        started_at = _parse_started_at(d.pop("started_at", UNSET))

        def _parse_variant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        variant = _parse_variant(d.pop("variant", UNSET))

        pipeline_job = cls(
            attempts=attempts,
            created_at=created_at,
            kind=kind,
            max_attempts=max_attempts,
            state=state,
            device=device,
            engine=engine,
            finished_at=finished_at,
            message=message,
            report=report,
            started_at=started_at,
            variant=variant,
        )

        pipeline_job.additional_properties = d
        return pipeline_job

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
