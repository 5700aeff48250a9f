from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.engine_info import EngineInfo


T = TypeVar("T", bound="RunnerRegistration")


@_attrs_define
class RunnerRegistration:
    """What a runner says about itself when it registers.

    Attributes:
        capabilities (list[str]): What the runner can do, e.g. `benchmark`, `fp16`: at most 32, each 1-64 characters.
        device (str): `cpu` or `cuda:N`.
        device_name (str): The CPU model or GPU name.
        engine (str): The inference engine and its version.
        kiln_version (str):
        name (str): E.g. the host name; several runners may share one.
        driver (None | str | Unset): GPU driver and CUDA versions.
        engines (list[EngineInfo] | Unset): The engines it measures with; benchmarks are queued per device class and
            engine. Absent or empty:
            kiln's own evaluator (what runners before engines were registered ran).
        memory_bytes (int | None | Unset): Device memory (GPU) or system memory (CPU), when known.
        threads (int | None | Unset): CPU threads benchmarks are pinned to.
    """

    capabilities: list[str]
    device: str
    device_name: str
    engine: str
    kiln_version: str
    name: str
    driver: None | str | Unset = UNSET
    engines: list[EngineInfo] | Unset = UNSET
    memory_bytes: int | None | Unset = UNSET
    threads: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        capabilities = self.capabilities

        device = self.device

        device_name = self.device_name

        engine = self.engine

        kiln_version = self.kiln_version

        name = self.name

        driver: None | str | Unset
        if isinstance(self.driver, Unset):
            driver = UNSET
        else:
            driver = self.driver

        engines: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.engines, Unset):
            engines = []
            for engines_item_data in self.engines:
                engines_item = engines_item_data.to_dict()
                engines.append(engines_item)

        memory_bytes: int | None | Unset
        if isinstance(self.memory_bytes, Unset):
            memory_bytes = UNSET
        else:
            memory_bytes = self.memory_bytes

        threads: int | None | Unset
        if isinstance(self.threads, Unset):
            threads = UNSET
        else:
            threads = self.threads

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "capabilities": capabilities,
                "device": device,
                "device_name": device_name,
                "engine": engine,
                "kiln_version": kiln_version,
                "name": name,
            }
        )
        if driver is not UNSET:
            field_dict["driver"] = driver
        if engines is not UNSET:
            field_dict["engines"] = engines
        if memory_bytes is not UNSET:
            field_dict["memory_bytes"] = memory_bytes
        if threads is not UNSET:
            field_dict["threads"] = threads

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.engine_info import EngineInfo

        d = dict(src_dict)
        capabilities = cast(list[str], d.pop("capabilities"))

        device = d.pop("device")

        device_name = d.pop("device_name")

        engine = d.pop("engine")

        kiln_version = d.pop("kiln_version")

        name = d.pop("name")

        def _parse_driver(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        driver = _parse_driver(d.pop("driver", UNSET))

        _engines = d.pop("engines", UNSET)
        engines: list[EngineInfo] | Unset = UNSET
        if _engines is not UNSET:
            engines = []
            for engines_item_data in _engines:
                engines_item = EngineInfo.from_dict(engines_item_data)

                engines.append(engines_item)

        def _parse_memory_bytes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        memory_bytes = _parse_memory_bytes(d.pop("memory_bytes", UNSET))

        def _parse_threads(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        threads = _parse_threads(d.pop("threads", UNSET))

        runner_registration = cls(
            capabilities=capabilities,
            device=device,
            device_name=device_name,
            engine=engine,
            kiln_version=kiln_version,
            name=name,
            driver=driver,
            engines=engines,
            memory_bytes=memory_bytes,
            threads=threads,
        )

        return runner_registration
