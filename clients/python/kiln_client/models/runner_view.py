from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.runner_state import RunnerState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.engine_info import EngineInfo


T = TypeVar("T", bound="RunnerView")


@_attrs_define
class RunnerView:
    """A registered runner, as `GET /api/v1/runners` lists it: its registration's fields beside its state.

    Attributes:
        capabilities (list[str]): What the runner can do, e.g. `benchmark`, `fp16`.
        device (str): `cpu` or `cuda:N`.
        device_name (str): The CPU model or GPU name.
        engine (str): The inference engine and its version.
        engines (list[EngineInfo]): The engines it measures with.
        id (str):
        kiln_version (str):
        last_heartbeat_at (datetime.datetime):
        name (str):
        registered_at (datetime.datetime):
        state (RunnerState):
        current_job (None | str | Unset): The job it holds, when busy.
        driver (None | str | Unset): GPU driver and CUDA versions.
        memory_bytes (int | None | Unset): Device memory (GPU) or system memory (CPU), when known.
        threads (int | None | Unset): CPU threads benchmarks are pinned to.
    """

    capabilities: list[str]
    device: str
    device_name: str
    engine: str
    engines: list[EngineInfo]
    id: str
    kiln_version: str
    last_heartbeat_at: datetime.datetime
    name: str
    registered_at: datetime.datetime
    state: RunnerState
    current_job: None | str | Unset = UNSET
    driver: None | str | Unset = UNSET
    memory_bytes: int | None | Unset = UNSET
    threads: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        capabilities = self.capabilities

        device = self.device

        device_name = self.device_name

        engine = self.engine

        engines = []
        for engines_item_data in self.engines:
            engines_item = engines_item_data.to_dict()
            engines.append(engines_item)

        id = self.id

        kiln_version = self.kiln_version

        last_heartbeat_at = self.last_heartbeat_at.isoformat()

        name = self.name

        registered_at = self.registered_at.isoformat()

        state = self.state.value

        current_job: None | str | Unset
        if isinstance(self.current_job, Unset):
            current_job = UNSET
        else:
            current_job = self.current_job

        driver: None | str | Unset
        if isinstance(self.driver, Unset):
            driver = UNSET
        else:
            driver = self.driver

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
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "capabilities": capabilities,
                "device": device,
                "device_name": device_name,
                "engine": engine,
                "engines": engines,
                "id": id,
                "kiln_version": kiln_version,
                "last_heartbeat_at": last_heartbeat_at,
                "name": name,
                "registered_at": registered_at,
                "state": state,
            }
        )
        if current_job is not UNSET:
            field_dict["current_job"] = current_job
        if driver is not UNSET:
            field_dict["driver"] = driver
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

        engines = []
        _engines = d.pop("engines")
        for engines_item_data in _engines:
            engines_item = EngineInfo.from_dict(engines_item_data)

            engines.append(engines_item)

        id = d.pop("id")

        kiln_version = d.pop("kiln_version")

        last_heartbeat_at = datetime.datetime.fromisoformat(d.pop("last_heartbeat_at"))

        name = d.pop("name")

        registered_at = datetime.datetime.fromisoformat(d.pop("registered_at"))

        state = RunnerState(d.pop("state"))

        def _parse_current_job(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        current_job = _parse_current_job(d.pop("current_job", UNSET))

        def _parse_driver(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        driver = _parse_driver(d.pop("driver", UNSET))

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

        runner_view = cls(
            capabilities=capabilities,
            device=device,
            device_name=device_name,
            engine=engine,
            engines=engines,
            id=id,
            kiln_version=kiln_version,
            last_heartbeat_at=last_heartbeat_at,
            name=name,
            registered_at=registered_at,
            state=state,
            current_job=current_job,
            driver=driver,
            memory_bytes=memory_bytes,
            threads=threads,
        )

        runner_view.additional_properties = d
        return runner_view

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
