from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.lineage import Lineage
    from ..models.manifest_file import ManifestFile
    from ..models.manifest_variant import ManifestVariant
    from ..models.provenance import Provenance


T = TypeVar("T", bound="DeploymentManifest")


@_attrs_define
class DeploymentManifest:
    """The signed document: exactly which bytes to run, what they were proven to do, and where they came from.

    Attributes:
        exp (int):
        expires_at (datetime.datetime): Verifiers refuse the manifest afterwards, so a frozen mirror cannot serve it
            forever.
        iat (int): `issued_at` and `expires_at` as JWT registered claims (seconds), so that any JOSE library checks
            expiry.
        issued_at (datetime.datetime):
        model (str): `namespace/model`, e.g. `acme/sentiment`.
        provenance (Provenance):
        sequence (int): Strictly increasing per alias (per version for version manifests): a verifier that has seen a
            higher
            one refuses this one as a rollback.
        sources (list[ManifestFile]): The files as pushed.
        variants (list[ManifestVariant]): Every deployable variant; rejected ones are never listed.
        version (str):
        alias (None | str | Unset):
        iss (None | str | Unset): The registry that issued it (JWT `iss`): its configured public URL, or `urn:kiln:` and
            the kid of
            its first signing key. Verifiers keep their sequence state per issuer and subject. Absent from
            manifests of registries older than this field.
        lineage (Lineage | None | Unset):
    """

    exp: int
    expires_at: datetime.datetime
    iat: int
    issued_at: datetime.datetime
    model: str
    provenance: Provenance
    sequence: int
    sources: list[ManifestFile]
    variants: list[ManifestVariant]
    version: str
    alias: None | str | Unset = UNSET
    iss: None | str | Unset = UNSET
    lineage: Lineage | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.lineage import Lineage

        exp = self.exp

        expires_at = self.expires_at.isoformat()

        iat = self.iat

        issued_at = self.issued_at.isoformat()

        model = self.model

        provenance = self.provenance.to_dict()

        sequence = self.sequence

        sources = []
        for sources_item_data in self.sources:
            sources_item = sources_item_data.to_dict()
            sources.append(sources_item)

        variants = []
        for variants_item_data in self.variants:
            variants_item = variants_item_data.to_dict()
            variants.append(variants_item)

        version = self.version

        alias: None | str | Unset
        if isinstance(self.alias, Unset):
            alias = UNSET
        else:
            alias = self.alias

        iss: None | str | Unset
        if isinstance(self.iss, Unset):
            iss = UNSET
        else:
            iss = self.iss

        lineage: dict[str, Any] | None | Unset
        if isinstance(self.lineage, Unset):
            lineage = UNSET
        elif isinstance(self.lineage, Lineage):
            lineage = self.lineage.to_dict()
        else:
            lineage = self.lineage

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "exp": exp,
                "expires_at": expires_at,
                "iat": iat,
                "issued_at": issued_at,
                "model": model,
                "provenance": provenance,
                "sequence": sequence,
                "sources": sources,
                "variants": variants,
                "version": version,
            }
        )
        if alias is not UNSET:
            field_dict["alias"] = alias
        if iss is not UNSET:
            field_dict["iss"] = iss
        if lineage is not UNSET:
            field_dict["lineage"] = lineage

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.lineage import Lineage
        from ..models.manifest_file import ManifestFile
        from ..models.manifest_variant import ManifestVariant
        from ..models.provenance import Provenance

        d = dict(src_dict)
        exp = d.pop("exp")

        expires_at = datetime.datetime.fromisoformat(d.pop("expires_at"))

        iat = d.pop("iat")

        issued_at = datetime.datetime.fromisoformat(d.pop("issued_at"))

        model = d.pop("model")

        provenance = Provenance.from_dict(d.pop("provenance"))

        sequence = d.pop("sequence")

        sources = []
        _sources = d.pop("sources")
        for sources_item_data in _sources:
            sources_item = ManifestFile.from_dict(sources_item_data)

            sources.append(sources_item)

        variants = []
        _variants = d.pop("variants")
        for variants_item_data in _variants:
            variants_item = ManifestVariant.from_dict(variants_item_data)

            variants.append(variants_item)

        version = d.pop("version")

        def _parse_alias(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        alias = _parse_alias(d.pop("alias", UNSET))

        def _parse_iss(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        iss = _parse_iss(d.pop("iss", UNSET))

        def _parse_lineage(data: object) -> Lineage | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                lineage_type_0 = Lineage.from_dict(data)

                return lineage_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Lineage | None | Unset, data)

        lineage = _parse_lineage(d.pop("lineage", UNSET))

        deployment_manifest = cls(
            exp=exp,
            expires_at=expires_at,
            iat=iat,
            issued_at=issued_at,
            model=model,
            provenance=provenance,
            sequence=sequence,
            sources=sources,
            variants=variants,
            version=version,
            alias=alias,
            iss=iss,
            lineage=lineage,
        )

        deployment_manifest.additional_properties = d
        return deployment_manifest

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
