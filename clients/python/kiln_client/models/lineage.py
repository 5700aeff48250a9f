from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.lineage_dataset import LineageDataset
    from ..models.lineage_hyperparameters_type_0 import LineageHyperparametersType0
    from ..models.lineage_parent import LineageParent
    from ..models.producer import Producer


T = TypeVar("T", bound="Lineage")


@_attrs_define
class Lineage:
    """Where a version came from, as recorded at its push: references as given, each kiln dataset's files as
    they were then. `status` is read when the version is shown (absent in manifests).

        Attributes:
            datasets (list[LineageDataset] | Unset):
            hyperparameters (LineageHyperparametersType0 | None | Unset): At most 64 hyperparameters by name (1-64
                characters), each a string (at most 256 characters), a number or a boolean.
            parents (list[LineageParent] | Unset):
            producer (None | Producer | Unset):
            training_run (None | str | Unset):
    """

    datasets: list[LineageDataset] | Unset = UNSET
    hyperparameters: LineageHyperparametersType0 | None | Unset = UNSET
    parents: list[LineageParent] | Unset = UNSET
    producer: None | Producer | Unset = UNSET
    training_run: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.lineage_hyperparameters_type_0 import LineageHyperparametersType0
        from ..models.producer import Producer

        datasets: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.datasets, Unset):
            datasets = []
            for datasets_item_data in self.datasets:
                datasets_item = datasets_item_data.to_dict()
                datasets.append(datasets_item)

        hyperparameters: dict[str, Any] | None | Unset
        if isinstance(self.hyperparameters, Unset):
            hyperparameters = UNSET
        elif isinstance(self.hyperparameters, LineageHyperparametersType0):
            hyperparameters = self.hyperparameters.to_dict()
        else:
            hyperparameters = self.hyperparameters

        parents: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.parents, Unset):
            parents = []
            for parents_item_data in self.parents:
                parents_item = parents_item_data.to_dict()
                parents.append(parents_item)

        producer: dict[str, Any] | None | Unset
        if isinstance(self.producer, Unset):
            producer = UNSET
        elif isinstance(self.producer, Producer):
            producer = self.producer.to_dict()
        else:
            producer = self.producer

        training_run: None | str | Unset
        if isinstance(self.training_run, Unset):
            training_run = UNSET
        else:
            training_run = self.training_run

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if datasets is not UNSET:
            field_dict["datasets"] = datasets
        if hyperparameters is not UNSET:
            field_dict["hyperparameters"] = hyperparameters
        if parents is not UNSET:
            field_dict["parents"] = parents
        if producer is not UNSET:
            field_dict["producer"] = producer
        if training_run is not UNSET:
            field_dict["training_run"] = training_run

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.lineage_dataset import LineageDataset
        from ..models.lineage_hyperparameters_type_0 import LineageHyperparametersType0
        from ..models.lineage_parent import LineageParent
        from ..models.producer import Producer

        d = dict(src_dict)
        _datasets = d.pop("datasets", UNSET)
        datasets: list[LineageDataset] | Unset = UNSET
        if _datasets is not UNSET:
            datasets = []
            for datasets_item_data in _datasets:
                datasets_item = LineageDataset.from_dict(datasets_item_data)

                datasets.append(datasets_item)

        def _parse_hyperparameters(
            data: object,
        ) -> LineageHyperparametersType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                hyperparameters_type_0 = LineageHyperparametersType0.from_dict(data)

                return hyperparameters_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LineageHyperparametersType0 | None | Unset, data)

        hyperparameters = _parse_hyperparameters(d.pop("hyperparameters", UNSET))

        _parents = d.pop("parents", UNSET)
        parents: list[LineageParent] | Unset = UNSET
        if _parents is not UNSET:
            parents = []
            for parents_item_data in _parents:
                parents_item = LineageParent.from_dict(parents_item_data)

                parents.append(parents_item)

        def _parse_producer(data: object) -> None | Producer | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                producer_type_0 = Producer.from_dict(data)

                return producer_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Producer | Unset, data)

        producer = _parse_producer(d.pop("producer", UNSET))

        def _parse_training_run(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        training_run = _parse_training_run(d.pop("training_run", UNSET))

        lineage = cls(
            datasets=datasets,
            hyperparameters=hyperparameters,
            parents=parents,
            producer=producer,
            training_run=training_run,
        )

        lineage.additional_properties = d
        return lineage

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
