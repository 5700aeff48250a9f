from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="LatencyPair")


@_attrs_define
class LatencyPair:
    """One benchmark both the teacher and the student have.

    Attributes:
        batch_size (int):
        device (str):
        engine (str):
        student_p50_ms (float):
        teacher_p50_ms (float):
        variant (str):
        sequence_length (int | None | Unset):
    """

    batch_size: int
    device: str
    engine: str
    student_p50_ms: float
    teacher_p50_ms: float
    variant: str
    sequence_length: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        batch_size = self.batch_size

        device = self.device

        engine = self.engine

        student_p50_ms = self.student_p50_ms

        teacher_p50_ms = self.teacher_p50_ms

        variant = self.variant

        sequence_length: int | None | Unset
        if isinstance(self.sequence_length, Unset):
            sequence_length = UNSET
        else:
            sequence_length = self.sequence_length

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "batch_size": batch_size,
                "device": device,
                "engine": engine,
                "student_p50_ms": student_p50_ms,
                "teacher_p50_ms": teacher_p50_ms,
                "variant": variant,
            }
        )
        if sequence_length is not UNSET:
            field_dict["sequence_length"] = sequence_length

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        batch_size = d.pop("batch_size")

        device = d.pop("device")

        engine = d.pop("engine")

        student_p50_ms = d.pop("student_p50_ms")

        teacher_p50_ms = d.pop("teacher_p50_ms")

        variant = d.pop("variant")

        def _parse_sequence_length(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        sequence_length = _parse_sequence_length(d.pop("sequence_length", UNSET))

        latency_pair = cls(
            batch_size=batch_size,
            device=device,
            engine=engine,
            student_p50_ms=student_p50_ms,
            teacher_p50_ms=teacher_p50_ms,
            variant=variant,
            sequence_length=sequence_length,
        )

        latency_pair.additional_properties = d
        return latency_pair

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
