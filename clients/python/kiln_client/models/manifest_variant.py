from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.variant_origin import VariantOrigin
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.benchmark_result import BenchmarkResult
    from ..models.manifest_file import ManifestFile
    from ..models.manifest_variant_passes_type_0_item import (
        ManifestVariantPassesType0Item,
    )
    from ..models.manifest_variant_validation_type_0 import (
        ManifestVariantValidationType0,
    )
    from ..models.tensor_signature import TensorSignature


T = TypeVar("T", bound="ManifestVariant")


@_attrs_define
class ManifestVariant:
    """
    Attributes:
        files (list[ManifestFile]): The model file first, then its external-data files.
        inputs (list[TensorSignature]):
        name (str): `onnx`, `fp32`, `fp16`, `int8`, `int8-dynamic`, `pruned-N`.
        opset (int):
        outputs (list[TensorSignature]):
        sha256 (str): sha256 content digest
        size (int): Model plus external-data bytes.
        benchmarks (list[BenchmarkResult] | Unset): Measurements on runners, one per device and batch size.
        origin (VariantOrigin | Unset): Where a variant's bytes come from.
        passes (list[ManifestVariantPassesType0Item] | None | Unset): What each optimization pass changed, for optimized
            variants: one record per
            pass, in the order they ran.
        validation (ManifestVariantValidationType0 | None | Unset): How the variant was proven: engine, reference, max
            absolute and relative L2 error, tolerance.
    """

    files: list[ManifestFile]
    inputs: list[TensorSignature]
    name: str
    opset: int
    outputs: list[TensorSignature]
    sha256: str
    size: int
    benchmarks: list[BenchmarkResult] | Unset = UNSET
    origin: VariantOrigin | Unset = UNSET
    passes: list[ManifestVariantPassesType0Item] | None | Unset = UNSET
    validation: ManifestVariantValidationType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.manifest_variant_validation_type_0 import (
            ManifestVariantValidationType0,
        )

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

        sha256 = self.sha256

        size = self.size

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
        elif isinstance(self.validation, ManifestVariantValidationType0):
            validation = self.validation.to_dict()
        else:
            validation = self.validation

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "files": files,
                "inputs": inputs,
                "name": name,
                "opset": opset,
                "outputs": outputs,
                "sha256": sha256,
                "size": size,
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
        from ..models.manifest_file import ManifestFile
        from ..models.manifest_variant_passes_type_0_item import (
            ManifestVariantPassesType0Item,
        )
        from ..models.manifest_variant_validation_type_0 import (
            ManifestVariantValidationType0,
        )
        from ..models.tensor_signature import TensorSignature

        d = dict(src_dict)
        files = []
        _files = d.pop("files")
        for files_item_data in _files:
            files_item = ManifestFile.from_dict(files_item_data)

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

        sha256 = d.pop("sha256")

        size = d.pop("size")

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
        ) -> list[ManifestVariantPassesType0Item] | None | Unset:
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
                    passes_type_0_item = ManifestVariantPassesType0Item.from_dict(
                        passes_type_0_item_data
                    )

                    passes_type_0.append(passes_type_0_item)

                return passes_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ManifestVariantPassesType0Item] | None | Unset, data)

        passes = _parse_passes(d.pop("passes", UNSET))

        def _parse_validation(
            data: object,
        ) -> ManifestVariantValidationType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                validation_type_0 = ManifestVariantValidationType0.from_dict(data)

                return validation_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ManifestVariantValidationType0 | None | Unset, data)

        validation = _parse_validation(d.pop("validation", UNSET))

        manifest_variant = cls(
            files=files,
            inputs=inputs,
            name=name,
            opset=opset,
            outputs=outputs,
            sha256=sha256,
            size=size,
            benchmarks=benchmarks,
            origin=origin,
            passes=passes,
            validation=validation,
        )

        manifest_variant.additional_properties = d
        return manifest_variant

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
