from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ServingReport")


@_attrs_define
class ServingReport:
    """What a serving process reports, with a runner-scoped token, every half minute while it serves.

    Attributes:
        device (str): `cpu` or `cuda:N`.
        endpoints (list[str]): Where it answers: the Open Inference Protocol's REST and gRPC addresses, as clients reach
            them
            (1 to 8, each at most 200 characters).
        engine (str): `onnxruntime` or `kiln`.
        model (str):
        name (str): The process's name (its host name, unless set).
        namespace (str):
        sequence (int): The sequence of the signed manifest it verified.
        sha256 (str): sha256 content digest
        variant (str): The variant (`fp32`, `int8`, ...).
        version (str):
        alias (None | str | Unset):
    """

    device: str
    endpoints: list[str]
    engine: str
    model: str
    name: str
    namespace: str
    sequence: int
    sha256: str
    variant: str
    version: str
    alias: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        device = self.device

        endpoints = self.endpoints

        engine = self.engine

        model = self.model

        name = self.name

        namespace = self.namespace

        sequence = self.sequence

        sha256 = self.sha256

        variant = self.variant

        version = self.version

        alias: None | str | Unset
        if isinstance(self.alias, Unset):
            alias = UNSET
        else:
            alias = self.alias

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "device": device,
                "endpoints": endpoints,
                "engine": engine,
                "model": model,
                "name": name,
                "namespace": namespace,
                "sequence": sequence,
                "sha256": sha256,
                "variant": variant,
                "version": version,
            }
        )
        if alias is not UNSET:
            field_dict["alias"] = alias

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        device = d.pop("device")

        endpoints = cast(list[str], d.pop("endpoints"))

        engine = d.pop("engine")

        model = d.pop("model")

        name = d.pop("name")

        namespace = d.pop("namespace")

        sequence = d.pop("sequence")

        sha256 = d.pop("sha256")

        variant = d.pop("variant")

        version = d.pop("version")

        def _parse_alias(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        alias = _parse_alias(d.pop("alias", UNSET))

        serving_report = cls(
            device=device,
            endpoints=endpoints,
            engine=engine,
            model=model,
            name=name,
            namespace=namespace,
            sequence=sequence,
            sha256=sha256,
            variant=variant,
            version=version,
            alias=alias,
        )

        return serving_report
