from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.distillation_state import DistillationState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.distillation_comparison import DistillationComparison
    from ..models.distillation_progress import DistillationProgress
    from ..models.distillation_report_type_0 import DistillationReportType0
    from ..models.distillation_request import DistillationRequest


T = TypeVar("T", bound="Distillation")


@_attrs_define
class Distillation:
    """A distillation job, as the API shows it.

    Attributes:
        attempt (int): 1 for the first runner; more when a runner died and another resumed from the last checkpoint.
        created_at (datetime.datetime):
        id (str):
        into (str): Where the student goes, `namespace/model:version`.
        request (DistillationRequest): `POST /api/v1/models/{namespace}/{model}/versions/{version}/distillations`:
            distill that version.
        requested_by (str):
        state (DistillationState): Where a distillation is.
        teacher (str): The teacher, `namespace/model:version`.
        comparison (DistillationComparison | None | Unset):
        finished_at (datetime.datetime | None | Unset):
        message (None | str | Unset): Why it failed, or who cancelled it.
        progress (DistillationProgress | None | Unset):
        report (DistillationReportType0 | None | Unset): The report (docs/distillation.md, "The report"): the loss
            curve, held-out agreement with the
            teacher before and after training, parameter counts and sizes. Once succeeded.
        runner (None | str | Unset): The runner holding it, while running.
        started_at (datetime.datetime | None | Unset):
    """

    attempt: int
    created_at: datetime.datetime
    id: str
    into: str
    request: DistillationRequest
    requested_by: str
    state: DistillationState
    teacher: str
    comparison: DistillationComparison | None | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    message: None | str | Unset = UNSET
    progress: DistillationProgress | None | Unset = UNSET
    report: DistillationReportType0 | None | Unset = UNSET
    runner: None | str | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.distillation_comparison import DistillationComparison
        from ..models.distillation_progress import DistillationProgress
        from ..models.distillation_report_type_0 import DistillationReportType0

        attempt = self.attempt

        created_at = self.created_at.isoformat()

        id = self.id

        into = self.into

        request = self.request.to_dict()

        requested_by = self.requested_by

        state = self.state.value

        teacher = self.teacher

        comparison: dict[str, Any] | None | Unset
        if isinstance(self.comparison, Unset):
            comparison = UNSET
        elif isinstance(self.comparison, DistillationComparison):
            comparison = self.comparison.to_dict()
        else:
            comparison = self.comparison

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

        progress: dict[str, Any] | None | Unset
        if isinstance(self.progress, Unset):
            progress = UNSET
        elif isinstance(self.progress, DistillationProgress):
            progress = self.progress.to_dict()
        else:
            progress = self.progress

        report: dict[str, Any] | None | Unset
        if isinstance(self.report, Unset):
            report = UNSET
        elif isinstance(self.report, DistillationReportType0):
            report = self.report.to_dict()
        else:
            report = self.report

        runner: None | str | Unset
        if isinstance(self.runner, Unset):
            runner = UNSET
        else:
            runner = self.runner

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempt": attempt,
                "created_at": created_at,
                "id": id,
                "into": into,
                "request": request,
                "requested_by": requested_by,
                "state": state,
                "teacher": teacher,
            }
        )
        if comparison is not UNSET:
            field_dict["comparison"] = comparison
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if message is not UNSET:
            field_dict["message"] = message
        if progress is not UNSET:
            field_dict["progress"] = progress
        if report is not UNSET:
            field_dict["report"] = report
        if runner is not UNSET:
            field_dict["runner"] = runner
        if started_at is not UNSET:
            field_dict["started_at"] = started_at

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.distillation_comparison import DistillationComparison
        from ..models.distillation_progress import DistillationProgress
        from ..models.distillation_report_type_0 import DistillationReportType0
        from ..models.distillation_request import DistillationRequest

        d = dict(src_dict)
        attempt = d.pop("attempt")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        into = d.pop("into")

        request = DistillationRequest.from_dict(d.pop("request"))

        requested_by = d.pop("requested_by")

        state = DistillationState(d.pop("state"))

        teacher = d.pop("teacher")

        def _parse_comparison(data: object) -> DistillationComparison | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                comparison_type_0 = DistillationComparison.from_dict(data)

                return comparison_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DistillationComparison | None | Unset, data)

        comparison = _parse_comparison(d.pop("comparison", UNSET))

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

        def _parse_report(data: object) -> DistillationReportType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                report_type_0 = DistillationReportType0.from_dict(data)

                return report_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DistillationReportType0 | None | Unset, data)

        report = _parse_report(d.pop("report", UNSET))

        def _parse_runner(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        runner = _parse_runner(d.pop("runner", UNSET))

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

        distillation = cls(
            attempt=attempt,
            created_at=created_at,
            id=id,
            into=into,
            request=request,
            requested_by=requested_by,
            state=state,
            teacher=teacher,
            comparison=comparison,
            finished_at=finished_at,
            message=message,
            progress=progress,
            report=report,
            runner=runner,
            started_at=started_at,
        )

        distillation.additional_properties = d
        return distillation

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
