from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.pipeline_step import PipelineStep


T = TypeVar("T", bound="Provenance")


@_attrs_define
class Provenance:
    """
    Attributes:
        converter (str): The converter and optimizer that made the variants.
        kiln (str): The kiln server that published the manifest.
        pipeline (list[PipelineStep]): The pipeline's jobs, as run.
        runners (list[str] | Unset): The runners that measured the benchmarks, by name.
    """

    converter: str
    kiln: str
    pipeline: list[PipelineStep]
    runners: list[str] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        converter = self.converter

        kiln = self.kiln

        pipeline = []
        for pipeline_item_data in self.pipeline:
            pipeline_item = pipeline_item_data.to_dict()
            pipeline.append(pipeline_item)

        runners: list[str] | Unset = UNSET
        if not isinstance(self.runners, Unset):
            runners = self.runners

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "converter": converter,
                "kiln": kiln,
                "pipeline": pipeline,
            }
        )
        if runners is not UNSET:
            field_dict["runners"] = runners

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.pipeline_step import PipelineStep

        d = dict(src_dict)
        converter = d.pop("converter")

        kiln = d.pop("kiln")

        pipeline = []
        _pipeline = d.pop("pipeline")
        for pipeline_item_data in _pipeline:
            pipeline_item = PipelineStep.from_dict(pipeline_item_data)

            pipeline.append(pipeline_item)

        runners = cast(list[str], d.pop("runners", UNSET))

        provenance = cls(
            converter=converter,
            kiln=kiln,
            pipeline=pipeline,
            runners=runners,
        )

        provenance.additional_properties = d
        return provenance

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
