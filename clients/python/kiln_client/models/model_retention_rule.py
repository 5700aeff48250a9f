from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.retention_rule import RetentionRule


T = TypeVar("T", bound="ModelRetentionRule")


@_attrs_define
class ModelRetentionRule:
    """
    Attributes:
        model (str):
        rule (RetentionRule): Which versions to keep. A version is kept when any set field keeps it (and always while an
            alias
            names it); a rule with neither `keep_last` nor `keep_days` keeps everything.
    """

    model: str
    rule: RetentionRule
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        model = self.model

        rule = self.rule.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "model": model,
                "rule": rule,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.retention_rule import RetentionRule

        d = dict(src_dict)
        model = d.pop("model")

        rule = RetentionRule.from_dict(d.pop("rule"))

        model_retention_rule = cls(
            model=model,
            rule=rule,
        )

        model_retention_rule.additional_properties = d
        return model_retention_rule

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
