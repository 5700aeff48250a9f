from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.variant_origin import VariantOrigin
from ..models.variant_status import VariantStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.benchmark_result import BenchmarkResult
    from ..models.file_entry import FileEntry
    from ..models.tensor_signature import TensorSignature
    from ..models.variant_detail_passes_type_0_item import VariantDetailPassesType0Item
    from ..models.variant_detail_validation_type_0 import VariantDetailValidationType0


T = TypeVar("T", bound="VariantDetail")


@_attrs_define
class VariantDetail:
    """A model kiln produced (or checked) from a version's files: `onnx` is the version as one ONNX model.

    Attributes:
        digest (str): sha256 content digest
        files (list[FileEntry]): The model file first, then its external-data files.
        inputs (list[TensorSignature]):
        name (str):
        opset (int):
        outputs (list[TensorSignature]):
        size (int):
        status (VariantStatus): Whether a variant may be deployed.
        benchmarks (list[BenchmarkResult] | Unset): Measurements on runners, one per device and batch size.
        origin (VariantOrigin | Unset): Where a variant's bytes come from.
        passes (list[VariantDetailPassesType0Item] | None | Unset): What each optimization pass changed (nodes and bytes
            before and after), for optimized variants: one record per
            pass, in the order they ran.
        validation (None | Unset | VariantDetailValidationType0): How the variant was proven (engine, reference, max
            absolute and relative L2 error), when it was.
    """

    digest: str
    files: list[FileEntry]
    inputs: list[TensorSignature]
    name: str
    opset: int
    outputs: list[TensorSignature]
    size: int
    status: VariantStatus
    benchmarks: list[BenchmarkResult] | Unset = UNSET
    origin: VariantOrigin | Unset = UNSET
    passes: list[VariantDetailPassesType0Item] | None | Unset = UNSET
    validation: None | Unset | VariantDetailValidationType0 = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.variant_detail_validation_type_0 import (
            VariantDetailValidationType0,
        )

        digest = self.digest

        files = []
        for files_item_data in self.files:
            files_item = files_item_data.to_dict()
            files.append(files_item)

        inputs = []
        for inputs_item_data in self.inputs:
            inputs_item = inputs_item_data.to_dict()
            inputs.append(inputs_item)

        name = self.name

        opset = self.opset

        outputs = []
        for outputs_item_data in self.outputs:
            outputs_item = outputs_item_data.to_dict()
            outputs.append(outputs_item)

        size = self.size

        status = self.status.value

        benchmarks: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.benchmarks, Unset):
            benchmarks = []
            for benchmarks_item_data in self.benchmarks:
                benchmarks_item = benchmarks_item_data.to_dict()
                benchmarks.append(benchmarks_item)

        origin: str | Unset = UNSET
        if not isinstance(self.origin, Unset):
            origin = self.origin.value

        passes: list[dict[str, Any]] | None | Unset
        if isinstance(self.passes, Unset):
            passes = UNSET
        elif isinstance(self.passes, list):
            passes = []
            for passes_type_0_item_data in self.passes:
                passes_type_0_item = passes_type_0_item_data.to_dict()
                passes.append(passes_type_0_item)

        else:
            passes = self.passes

        validation: dict[str, Any] | None | Unset
        if isinstance(self.validation, Unset):
            validation = UNSET
        elif isinstance(self.validation, VariantDetailValidationType0):
            validation = self.validation.to_dict()
        else:
            validation = self.validation

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "digest": digest,
                "files": files,
                "inputs": inputs,
                "name": name,
                "opset": opset,
                "outputs": outputs,
                "size": size,
                "status": status,
            }
        )
        if benchmarks is not UNSET:
            field_dict["benchmarks"] = benchmarks
        if origin is not UNSET:
            field_dict["origin"] = origin
        if passes is not UNSET:
            field_dict["passes"] = passes
        if validation is not UNSET:
            field_dict["validation"] = validation

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.benchmark_result import BenchmarkResult
        from ..models.file_entry import FileEntry
        from ..models.tensor_signature import TensorSignature
        from ..models.variant_detail_passes_type_0_item import (
            VariantDetailPassesType0Item,
        )
        from ..models.variant_detail_validation_type_0 import (
            VariantDetailValidationType0,
        )

        d = dict(src_dict)
        digest = d.pop("digest")

        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = FileEntry.from_dict(files_item_data)

            files.append(files_item)

        inputs = []
        _inputs = d.pop("inputs")
        for inputs_item_data in _inputs:
            inputs_item = TensorSignature.from_dict(inputs_item_data)

            inputs.append(inputs_item)

        name = d.pop("name")

        opset = d.pop("opset")

        outputs = []
        _outputs = d.pop("outputs")
        for outputs_item_data in _outputs:
            outputs_item = TensorSignature.from_dict(outputs_item_data)

            outputs.append(outputs_item)

        size = d.pop("size")

        status = VariantStatus(d.pop("status"))

        _benchmarks = d.pop("benchmarks", UNSET)
        benchmarks: list[BenchmarkResult] | Unset = UNSET
        if _benchmarks is not UNSET:
            benchmarks = []
            for benchmarks_item_data in _benchmarks:
                benchmarks_item = BenchmarkResult.from_dict(benchmarks_item_data)

                benchmarks.append(benchmarks_item)

        _origin = d.pop("origin", UNSET)
        origin: VariantOrigin | Unset
        if isinstance(_origin, Unset):
            origin = UNSET
        else:
            origin = VariantOrigin(_origin)

        def _parse_passes(
            data: object,
        ) -> list[VariantDetailPassesType0Item] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                passes_type_0 = []
                _passes_type_0 = data
                for passes_type_0_item_data in _passes_type_0:
                    passes_type_0_item = VariantDetailPassesType0Item.from_dict(
                        passes_type_0_item_data
                    )

                    passes_type_0.append(passes_type_0_item)

                return passes_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[VariantDetailPassesType0Item] | None | Unset, data)

        passes = _parse_passes(d.pop("passes", UNSET))

        def _parse_validation(
            data: object,
        ) -> None | Unset | VariantDetailValidationType0:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                validation_type_0 = VariantDetailValidationType0.from_dict(data)

                return validation_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | VariantDetailValidationType0, data)

        validation = _parse_validation(d.pop("validation", UNSET))

        variant_detail = cls(
            digest=digest,
            files=files,
            inputs=inputs,
            name=name,
            opset=opset,
            outputs=outputs,
            size=size,
            status=status,
            benchmarks=benchmarks,
            origin=origin,
            passes=passes,
            validation=validation,
        )

        variant_detail.additional_properties = d
        return variant_detail

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
