from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="ServingView")


@_attrs_define
class ServingView:
    """A live serving process, as listed.

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
        id (str): The serving process's id, chosen by it.
        last_seen_at (datetime.datetime): Its last report; a process silent for 90 s is no longer listed.
        reported_by (str): Who owns the runner token it reports with.
        started_at (datetime.datetime):
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
    id: str
    last_seen_at: datetime.datetime
    reported_by: str
    started_at: datetime.datetime
    alias: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

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

        id = self.id

        last_seen_at = self.last_seen_at.isoformat()

        reported_by = self.reported_by

        started_at = self.started_at.isoformat()

        alias: None | str | Unset
        if isinstance(self.alias, Unset):
            alias = UNSET
        else:
            alias = self.alias

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
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
                "id": id,
                "last_seen_at": last_seen_at,
                "reported_by": reported_by,
                "started_at": started_at,
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

        id = d.pop("id")

        last_seen_at = datetime.datetime.fromisoformat(d.pop("last_seen_at"))

        reported_by = d.pop("reported_by")

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        def _parse_alias(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        alias = _parse_alias(d.pop("alias", UNSET))

        serving_view = cls(
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
            id=id,
            last_seen_at=last_seen_at,
            reported_by=reported_by,
            started_at=started_at,
            alias=alias,
        )

        serving_view.additional_properties = d
        return serving_view

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
