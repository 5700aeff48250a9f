"""The generated client (kiln_client) alone, as any openapi-python-client user would call it."""

from __future__ import annotations

from kiln_client import AuthenticatedClient, Client
from kiln_client.api.health import healthz
from kiln_client.api.manifests import jwks
from kiln_client.api.models import get_version, list_models
from kiln_client.models import ErrorResponse, ModelSummary, VersionDetail, VersionStatus
from sample import MODEL, VERSION


def test_list_models_and_a_typed_version(server, pushed):
    client = AuthenticatedClient(base_url=server.url, token=server.token)
    with client:
        models = list_models.sync(client=client)
        assert isinstance(models, list) and all(isinstance(m, ModelSummary) for m in models)
        assert MODEL in {f"{m.namespace}/{m.name}" for m in models}

        namespace, name = MODEL.split("/")
        detail = get_version.sync(namespace, name, VERSION, client=client)
        assert isinstance(detail, VersionDetail)
        assert detail.status == VersionStatus.READY
        assert {f.path for f in detail.files} >= {"settings.json", "weights/model.bin"}
        assert all(f.digest.startswith("sha256:") and f.size >= 0 for f in detail.files)

        missing = get_version.sync(namespace, name, "9.9.9", client=client)
        assert isinstance(missing, ErrorResponse) and missing.error.code == "not_found"


def test_public_endpoints_need_no_token(server):
    client = Client(base_url=server.url)
    with client:
        assert healthz.sync(client=client).status == "ok"
        keys = jwks.sync(client=client)
        assert keys["keys"] and keys["keys"][0]["alg"] == "EdDSA"
