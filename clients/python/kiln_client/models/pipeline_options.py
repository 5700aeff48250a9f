from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.pipeline_options_tolerances_type_0 import (
        PipelineOptionsTolerancesType0,
    )


T = TypeVar("T", bound="PipelineOptions")


@_attrs_define
class PipelineOptions:
    """What a push asks of its pipeline.

    Attributes:
        benchmark_batch_sizes (list[int] | None | Unset): Batch sizes runners measure the variants at, for models with a
            symbolic batch dim: 1 to 4 sizes,
            each 1-1024. Default: 1 and 8.
        benchmark_sequence_lengths (list[int] | None | Unset): Sequence lengths runners measure models with token inputs
            at: 1 to 4 lengths, each 1-65536.
            Default: 128.
        tolerances (None | PipelineOptionsTolerancesType0 | Unset): Relative L2 tolerance per variant name, replacing
            the default for that kind.
        variants (list[str] | None | Unset): Variants to make from the optimized model: `fp32`, `fp16`, `int8`,
            `int8-dynamic`, `pruned-N` (N %
            of the weights zeroed, 1-99). Default: fp32, fp16, int8.
    """

    benchmark_batch_sizes: list[int] | None | Unset = UNSET
    benchmark_sequence_lengths: list[int] | None | Unset = UNSET
    tolerances: None | PipelineOptionsTolerancesType0 | Unset = UNSET
    variants: list[str] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.pipeline_options_tolerances_type_0 import (
            PipelineOptionsTolerancesType0,
        )

        benchmark_batch_sizes: list[int] | None | Unset
        if isinstance(self.benchmark_batch_sizes, Unset):
            benchmark_batch_sizes = UNSET
        elif isinstance(self.benchmark_batch_sizes, list):
            benchmark_batch_sizes = self.benchmark_batch_sizes

        else:
            benchmark_batch_sizes = self.benchmark_batch_sizes

        benchmark_sequence_lengths: list[int] | None | Unset
        if isinstance(self.benchmark_sequence_lengths, Unset):
            benchmark_sequence_lengths = UNSET
        elif isinstance(self.benchmark_sequence_lengths, list):
            benchmark_sequence_lengths = self.benchmark_sequence_lengths

        else:
            benchmark_sequence_lengths = self.benchmark_sequence_lengths

        tolerances: dict[str, Any] | None | Unset
        if isinstance(self.tolerances, Unset):
            tolerances = UNSET
        elif isinstance(self.tolerances, PipelineOptionsTolerancesType0):
            tolerances = self.tolerances.to_dict()
        else:
            tolerances = self.tolerances

        variants: list[str] | None | Unset
        if isinstance(self.variants, Unset):
            variants = UNSET
        elif isinstance(self.variants, list):
            variants = self.variants

        else:
            variants = self.variants

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if benchmark_batch_sizes is not UNSET:
            field_dict["benchmark_batch_sizes"] = benchmark_batch_sizes
        if benchmark_sequence_lengths is not UNSET:
            field_dict["benchmark_sequence_lengths"] = benchmark_sequence_lengths
        if tolerances is not UNSET:
            field_dict["tolerances"] = tolerances
        if variants is not UNSET:
            field_dict["variants"] = variants

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.pipeline_options_tolerances_type_0 import (
            PipelineOptionsTolerancesType0,
        )

        d = dict(src_dict)

        def _parse_benchmark_batch_sizes(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                benchmark_batch_sizes_type_0 = cast(list[int], data)

                return benchmark_batch_sizes_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        benchmark_batch_sizes = _parse_benchmark_batch_sizes(
            d.pop("benchmark_batch_sizes", UNSET)
        )

        def _parse_benchmark_sequence_lengths(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                benchmark_sequence_lengths_type_0 = cast(list[int], data)

                return benchmark_sequence_lengths_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        benchmark_sequence_lengths = _parse_benchmark_sequence_lengths(
            d.pop("benchmark_sequence_lengths", UNSET)
        )

        def _parse_tolerances(
            data: object,
        ) -> None | PipelineOptionsTolerancesType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                tolerances_type_0 = PipelineOptionsTolerancesType0.from_dict(data)

                return tolerances_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | PipelineOptionsTolerancesType0 | Unset, data)

        tolerances = _parse_tolerances(d.pop("tolerances", UNSET))

        def _parse_variants(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                variants_type_0 = cast(list[str], data)

                return variants_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        variants = _parse_variants(d.pop("variants", UNSET))

        pipeline_options = cls(
            benchmark_batch_sizes=benchmark_batch_sizes,
            benchmark_sequence_lengths=benchmark_sequence_lengths,
            tolerances=tolerances,
            variants=variants,
        )

        return pipeline_options
