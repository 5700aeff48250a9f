from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.benchmark_result_engine_options import BenchmarkResultEngineOptions
    from ..models.benchmark_result_input_shapes import BenchmarkResultInputShapes
    from ..models.generation_result import GenerationResult


T = TypeVar("T", bound="BenchmarkResult")


@_attrs_define
class BenchmarkResult:
    """A variant measured on one device at one batch size, the way trtexec and onnxruntime_perf_test measure:
    warm-up first, then timed iterations with the device synchronised before the clock is read.

        Attributes:
            batch_size (int):
            device (str): `cpu` or `cuda:0`.
            device_name (str): E.g. `NVIDIA H200` or the CPU model.
            engine (str): The engine that ran it: `kiln` or `onnxruntime` (results from before engines were registered carry
                a description of kiln's evaluator here).
            input_shapes (BenchmarkResultInputShapes): The shape of each input the variant was run with (symbolic dims made
                concrete).
            iterations (int):
            measured_at (datetime.datetime):
            p50_ms (float):
            p90_ms (float):
            p99_ms (float):
            runner (str): The runner that measured it.
            throughput (float): Items per second at the median latency: batch_size / p50.
            warmup_iterations (int):
            driver (None | str | Unset): GPU driver and CUDA versions, when on a GPU.
            engine_options (BenchmarkResultEngineOptions | Unset): The engine settings a deployment would reproduce, e.g.
                `graph_optimization_level`,
                `intra_op_threads`, `cuda_graph`.
            engine_version (None | str | Unset): The engine's version, e.g. `1.32.0`.
            execution_provider (None | str | Unset): Where the engine ran it, e.g. `CPUExecutionProvider`,
                `CUDAExecutionProvider`.
            generation (GenerationResult | None | Unset):
            max_abs_error (float | None | Unset): Largest absolute difference of the outputs on this device from kiln's CPU
                reference.
            peak_memory_bytes (int | None | Unset): Peak memory while running: GPU memory in use on the device, or the
                runner process's peak resident
                set on a CPU; None where it cannot be told apart (the server's embedded runner).
            sequence_length (int | None | Unset): The length given to token inputs' sequence dim, for models with token
                inputs.
            threads (int | None | Unset): CPU threads the engine was pinned to.
    """

    batch_size: int
    device: str
    device_name: str
    engine: str
    input_shapes: BenchmarkResultInputShapes
    iterations: int
    measured_at: datetime.datetime
    p50_ms: float
    p90_ms: float
    p99_ms: float
    runner: str
    throughput: float
    warmup_iterations: int
    driver: None | str | Unset = UNSET
    engine_options: BenchmarkResultEngineOptions | Unset = UNSET
    engine_version: None | str | Unset = UNSET
    execution_provider: None | str | Unset = UNSET
    generation: GenerationResult | None | Unset = UNSET
    max_abs_error: float | None | Unset = UNSET
    peak_memory_bytes: int | None | Unset = UNSET
    sequence_length: int | None | Unset = UNSET
    threads: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.generation_result import GenerationResult

        batch_size = self.batch_size

        device = self.device

        device_name = self.device_name

        engine = self.engine

        input_shapes = self.input_shapes.to_dict()

        iterations = self.iterations

        measured_at = self.measured_at.isoformat()

        p50_ms = self.p50_ms

        p90_ms = self.p90_ms

        p99_ms = self.p99_ms

        runner = self.runner

        throughput = self.throughput

        warmup_iterations = self.warmup_iterations

        driver: None | str | Unset
        if isinstance(self.driver, Unset):
            driver = UNSET
        else:
            driver = self.driver

        engine_options: dict[str, Any] | Unset = UNSET
        if not isinstance(self.engine_options, Unset):
            engine_options = self.engine_options.to_dict()

        engine_version: None | str | Unset
        if isinstance(self.engine_version, Unset):
            engine_version = UNSET
        else:
            engine_version = self.engine_version

        execution_provider: None | str | Unset
        if isinstance(self.execution_provider, Unset):
            execution_provider = UNSET
        else:
            execution_provider = self.execution_provider

        generation: dict[str, Any] | None | Unset
        if isinstance(self.generation, Unset):
            generation = UNSET
        elif isinstance(self.generation, GenerationResult):
            generation = self.generation.to_dict()
        else:
            generation = self.generation

        max_abs_error: float | None | Unset
        if isinstance(self.max_abs_error, Unset):
            max_abs_error = UNSET
        else:
            max_abs_error = self.max_abs_error

        peak_memory_bytes: int | None | Unset
        if isinstance(self.peak_memory_bytes, Unset):
            peak_memory_bytes = UNSET
        else:
            peak_memory_bytes = self.peak_memory_bytes

        sequence_length: int | None | Unset
        if isinstance(self.sequence_length, Unset):
            sequence_length = UNSET
        else:
            sequence_length = self.sequence_length

        threads: int | None | Unset
        if isinstance(self.threads, Unset):
            threads = UNSET
        else:
            threads = self.threads

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "batch_size": batch_size,
                "device": device,
                "device_name": device_name,
                "engine": engine,
                "input_shapes": input_shapes,
                "iterations": iterations,
                "measured_at": measured_at,
                "p50_ms": p50_ms,
                "p90_ms": p90_ms,
                "p99_ms": p99_ms,
                "runner": runner,
                "throughput": throughput,
                "warmup_iterations": warmup_iterations,
            }
        )
        if driver is not UNSET:
            field_dict["driver"] = driver
        if engine_options is not UNSET:
            field_dict["engine_options"] = engine_options
        if engine_version is not UNSET:
            field_dict["engine_version"] = engine_version
        if execution_provider is not UNSET:
            field_dict["execution_provider"] = execution_provider
        if generation is not UNSET:
            field_dict["generation"] = generation
        if max_abs_error is not UNSET:
            field_dict["max_abs_error"] = max_abs_error
        if peak_memory_bytes is not UNSET:
            field_dict["peak_memory_bytes"] = peak_memory_bytes
        if sequence_length is not UNSET:
            field_dict["sequence_length"] = sequence_length
        if threads is not UNSET:
            field_dict["threads"] = threads

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.benchmark_result_engine_options import (
            BenchmarkResultEngineOptions,
        )
        from ..models.benchmark_result_input_shapes import BenchmarkResultInputShapes
        from ..models.generation_result import GenerationResult

        d = dict(src_dict)
        batch_size = d.pop("batch_size")

        device = d.pop("device")

        device_name = d.pop("device_name")

        engine = d.pop("engine")

        input_shapes = BenchmarkResultInputShapes.from_dict(d.pop("input_shapes"))

        iterations = d.pop("iterations")

        measured_at = datetime.datetime.fromisoformat(d.pop("measured_at"))

        p50_ms = d.pop("p50_ms")

        p90_ms = d.pop("p90_ms")

        p99_ms = d.pop("p99_ms")

        runner = d.pop("runner")

        throughput = d.pop("throughput")

        warmup_iterations = d.pop("warmup_iterations")

        def _parse_driver(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        driver = _parse_driver(d.pop("driver", UNSET))

        _engine_options = d.pop("engine_options", UNSET)
        engine_options: BenchmarkResultEngineOptions | Unset
        if isinstance(_engine_options, Unset):
            engine_options = UNSET
        else:
            engine_options = BenchmarkResultEngineOptions.from_dict(_engine_options)

        def _parse_engine_version(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        engine_version = _parse_engine_version(d.pop("engine_version", UNSET))

        def _parse_execution_provider(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        execution_provider = _parse_execution_provider(
            d.pop("execution_provider", UNSET)
        )

        def _parse_generation(data: object) -> GenerationResult | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                generation_type_0 = GenerationResult.from_dict(data)

                return generation_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(GenerationResult | None | Unset, data)

        generation = _parse_generation(d.pop("generation", UNSET))

        def _parse_max_abs_error(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        max_abs_error = _parse_max_abs_error(d.pop("max_abs_error", UNSET))

        def _parse_peak_memory_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        peak_memory_bytes = _parse_peak_memory_bytes(d.pop("peak_memory_bytes", UNSET))

        def _parse_sequence_length(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        sequence_length = _parse_sequence_length(d.pop("sequence_length", UNSET))

        def _parse_threads(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        threads = _parse_threads(d.pop("threads", UNSET))

        benchmark_result = cls(
            batch_size=batch_size,
            device=device,
            device_name=device_name,
            engine=engine,
            input_shapes=input_shapes,
            iterations=iterations,
            measured_at=measured_at,
            p50_ms=p50_ms,
            p90_ms=p90_ms,
            p99_ms=p99_ms,
            runner=runner,
            throughput=throughput,
            warmup_iterations=warmup_iterations,
            driver=driver,
            engine_options=engine_options,
            engine_version=engine_version,
            execution_provider=execution_provider,
            generation=generation,
            max_abs_error=max_abs_error,
            peak_memory_bytes=peak_memory_bytes,
            sequence_length=sequence_length,
            threads=threads,
        )

        benchmark_result.additional_properties = d
        return benchmark_result

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
