from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.distillation_result_type_1_outcome import DistillationResultType1Outcome

T = TypeVar("T", bound="DistillationResultType1")


@_attrs_define
class DistillationResultType1:
    """The job cannot succeed (a teacher kiln cannot distill, a dataset it cannot read): final.

    Attributes:
        message (str):
        outcome (DistillationResultType1Outcome):
    """

    message: str
    outcome: DistillationResultType1Outcome
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        message = self.message

        outcome = self.outcome.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "message": message,
                "outcome": outcome,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        message = d.pop("message")

        outcome = DistillationResultType1Outcome(d.pop("outcome"))

        distillation_result_type_1 = cls(
            message=message,
            outcome=outcome,
        )

        distillation_result_type_1.additional_properties = d
        return distillation_result_type_1

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
