from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.model_retention_rule import ModelRetentionRule
    from ..models.retention_rule import RetentionRule


T = TypeVar("T", bound="RetentionRules")


@_attrs_define
class RetentionRules:
    """A namespace's rule and its models' own rules (which replace the namespace's for that model).

    Attributes:
        models (list[ModelRetentionRule]):
        namespace (str):
        rule (None | RetentionRule | Unset):
    """

    models: list[ModelRetentionRule]
    namespace: str
    rule: None | RetentionRule | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.retention_rule import RetentionRule

        models = []
        for models_item_data in self.models:
            models_item = models_item_data.to_dict()
            models.append(models_item)

        namespace = self.namespace

        rule: dict[str, Any] | None | Unset
        if isinstance(self.rule, Unset):
            rule = UNSET
        elif isinstance(self.rule, RetentionRule):
            rule = self.rule.to_dict()
        else:
            rule = self.rule

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "models": models,
                "namespace": namespace,
            }
        )
        if rule is not UNSET:
            field_dict["rule"] = rule

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.model_retention_rule import ModelRetentionRule
        from ..models.retention_rule import RetentionRule

        d = dict(src_dict)
        models = []
        _models = d.pop("models")
        for models_item_data in _models:
            models_item = ModelRetentionRule.from_dict(models_item_data)

            models.append(models_item)

        namespace = d.pop("namespace")

        def _parse_rule(data: object) -> None | RetentionRule | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                rule_type_0 = RetentionRule.from_dict(data)

                return rule_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RetentionRule | Unset, data)

        rule = _parse_rule(d.pop("rule", UNSET))

        retention_rules = cls(
            models=models,
            namespace=namespace,
            rule=rule,
        )

        retention_rules.additional_properties = d
        return retention_rules

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
