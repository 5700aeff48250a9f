from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.deployment_manifest import DeploymentManifest


T = TypeVar("T", bound="ManifestResponse")


@_attrs_define
class ManifestResponse:
    """A published manifest: the signed document and its compact JWS (`GET .../manifest` with
    `Accept: application/jose` returns the JWS alone).

        Attributes:
            jws (str): Compact JWS (EdDSA) over `payload`: what a deployment system verifies.
            kid (str): The signing key's id, as in the JWS header and /.well-known/jwks.json.
            payload (DeploymentManifest): The signed document: exactly which bytes to run, what they were proven to do, and
                where they came from.
            sequence (int):
    """

    jws: str
    kid: str
    payload: DeploymentManifest
    sequence: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        jws = self.jws

        kid = self.kid

        payload = self.payload.to_dict()

        sequence = self.sequence

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "jws": jws,
                "kid": kid,
                "payload": payload,
                "sequence": sequence,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.deployment_manifest import DeploymentManifest

        d = dict(src_dict)
        jws = d.pop("jws")

        kid = d.pop("kid")

        payload = DeploymentManifest.from_dict(d.pop("payload"))

        sequence = d.pop("sequence")

        manifest_response = cls(
            jws=jws,
            kid=kid,
            payload=payload,
            sequence=sequence,
        )

        manifest_response.additional_properties = d
        return manifest_response

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
