from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.benchmark_report_type_0_outcome import BenchmarkReportType0Outcome

if TYPE_CHECKING:
    from ..models.benchmark_result import BenchmarkResult


T = TypeVar("T", bound="BenchmarkReportType0")


@_attrs_define
class BenchmarkReportType0:
    """
    Attributes:
        outcome (BenchmarkReportType0Outcome):
        results (list[BenchmarkResult]):
    """

    outcome: BenchmarkReportType0Outcome
    results: list[BenchmarkResult]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        outcome = self.outcome.value

        results = []
        for results_item_data in self.results:
            results_item = results_item_data.to_dict()
            results.append(results_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "outcome": outcome,
                "results": results,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.benchmark_result import BenchmarkResult

        d = dict(src_dict)
        outcome = BenchmarkReportType0Outcome(d.pop("outcome"))

        results = []
        _results = d.pop("results")
        for results_item_data in _results:
            results_item = BenchmarkResult.from_dict(results_item_data)

            results.append(results_item)

        benchmark_report_type_0 = cls(
            outcome=outcome,
            results=results,
        )

        benchmark_report_type_0.additional_properties = d
        return benchmark_report_type_0

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
