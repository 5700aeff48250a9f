from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="GenerationResult")


@_attrs_define
class GenerationResult:
    """A decoder generating greedily with its key/value cache, what fleets are sized by: the prompt's
    forward pass (time to first token) and the token-by-token steps after it.

        Attributes:
            generated_tokens (int): Tokens generated after the first, one step each.
            per_token_ms (float): Median time of one decoding step (one token for each sequence of the batch).
            prompt_tokens (int): Tokens in each sequence's prompt.
            time_to_first_token_ms (float): Median time of the prompt's forward pass, which yields the first token.
            tokens_per_second (float): Tokens per second over the batch while decoding: batch_size / per_token_ms.
    """

    generated_tokens: int
    per_token_ms: float
    prompt_tokens: int
    time_to_first_token_ms: float
    tokens_per_second: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        generated_tokens = self.generated_tokens

        per_token_ms = self.per_token_ms

        prompt_tokens = self.prompt_tokens

        time_to_first_token_ms = self.time_to_first_token_ms

        tokens_per_second = self.tokens_per_second

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "generated_tokens": generated_tokens,
                "per_token_ms": per_token_ms,
                "prompt_tokens": prompt_tokens,
                "time_to_first_token_ms": time_to_first_token_ms,
                "tokens_per_second": tokens_per_second,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        generated_tokens = d.pop("generated_tokens")

        per_token_ms = d.pop("per_token_ms")

        prompt_tokens = d.pop("prompt_tokens")

        time_to_first_token_ms = d.pop("time_to_first_token_ms")

        tokens_per_second = d.pop("tokens_per_second")

        generation_result = cls(
            generated_tokens=generated_tokens,
            per_token_ms=per_token_ms,
            prompt_tokens=prompt_tokens,
            time_to_first_token_ms=time_to_first_token_ms,
            tokens_per_second=tokens_per_second,
        )

        generation_result.additional_properties = d
        return generation_result

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
