from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="EngineInfo")


@_attrs_define
class EngineInfo:
    """An inference engine a runner measures with.

    Attributes:
        execution_providers (list[str]): What it can run on, best first, e.g. `CUDAExecutionProvider`,
            `CPUExecutionProvider`: 1 to 16.
        name (str): `kiln` (kiln's evaluator) or `onnxruntime`.
        version (str): The engine's own version, e.g. `1.32.0`.
    """

    execution_providers: list[str]
    name: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        execution_providers = self.execution_providers

        name = self.name

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "execution_providers": execution_providers,
                "name": name,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        execution_providers = cast(list[str], d.pop("execution_providers"))

        name = d.pop("name")

        version = d.pop("version")

        engine_info = cls(
            execution_providers=execution_providers,
            name=name,
            version=version,
        )

        return engine_info
