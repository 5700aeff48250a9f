from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.latency_pair import LatencyPair


T = TypeVar("T", bound="DistillationComparison")


@_attrs_define
class DistillationComparison:
    """A student next to its teacher.

    Attributes:
        latency (list[LatencyPair]): Benchmarks measured for both, matched by variant, device, engine, batch size and
            sequence length.
        student (str): The student, `namespace/model:version`.
        student_bytes (int):
        student_parameters (int):
        teacher_bytes (int):
        teacher_parameters (int):
        top1_agreement (float): Held-out top-1 agreement of the student's logits with the teacher's, after training.
    """

    latency: list[LatencyPair]
    student: str
    student_bytes: int
    student_parameters: int
    teacher_bytes: int
    teacher_parameters: int
    top1_agreement: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        latency = []
        for latency_item_data in self.latency:
            latency_item = latency_item_data.to_dict()
            latency.append(latency_item)

        student = self.student

        student_bytes = self.student_bytes

        student_parameters = self.student_parameters

        teacher_bytes = self.teacher_bytes

        teacher_parameters = self.teacher_parameters

        top1_agreement = self.top1_agreement

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "latency": latency,
                "student": student,
                "student_bytes": student_bytes,
                "student_parameters": student_parameters,
                "teacher_bytes": teacher_bytes,
                "teacher_parameters": teacher_parameters,
                "top1_agreement": top1_agreement,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.latency_pair import LatencyPair

        d = dict(src_dict)
        latency = []
        _latency = d.pop("latency")
        for latency_item_data in _latency:
            latency_item = LatencyPair.from_dict(latency_item_data)

            latency.append(latency_item)

        student = d.pop("student")

        student_bytes = d.pop("student_bytes")

        student_parameters = d.pop("student_parameters")

        teacher_bytes = d.pop("teacher_bytes")

        teacher_parameters = d.pop("teacher_parameters")

        top1_agreement = d.pop("top1_agreement")

        distillation_comparison = cls(
            latency=latency,
            student=student,
            student_bytes=student_bytes,
            student_parameters=student_parameters,
            teacher_bytes=teacher_bytes,
            teacher_parameters=teacher_parameters,
            top1_agreement=top1_agreement,
        )

        distillation_comparison.additional_properties = d
        return distillation_comparison

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
