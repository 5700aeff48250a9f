from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
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
            engine (str): The engine that ran it, with its version.
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
            generation (GenerationResult | None | Unset):
            max_abs_error (float | None | Unset): Largest absolute difference of the outputs on this device from kiln's CPU
                reference.
            peak_memory_bytes (int | None | Unset): Peak memory while running: GPU memory in use on the device, or the
                runner process's peak resident
                set on a CPU; None where it cannot be told apart (the server's embedded runner).
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
    generation: GenerationResult | None | Unset = UNSET
    max_abs_error: float | None | Unset = UNSET
    peak_memory_bytes: int | None | Unset = UNSET
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
        if generation is not UNSET:
            field_dict["generation"] = generation
        if max_abs_error is not UNSET:
            field_dict["max_abs_error"] = max_abs_error
        if peak_memory_bytes is not UNSET:
            field_dict["peak_memory_bytes"] = peak_memory_bytes
        if threads is not UNSET:
            field_dict["threads"] = threads

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
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
            generation=generation,
            max_abs_error=max_abs_error,
            peak_memory_bytes=peak_memory_bytes,
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
