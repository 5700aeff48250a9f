"""Real answers of a running kiln-server checked against the OpenAPI document it serves.

Usage: openapi_responses.py SERVER_URL TOKEN MODEL_REF_PATH
(MODEL_REF_PATH like acme/m/versions/1; the version must be ready and aliased `production`.)

Each request's status must be one the operation declares, and its JSON body must validate (formats
included: dates are RFC 3339) against the schema declared for that status and content type. Prints one
line per request and exits non-zero on the first mismatch's end of run.
"""

import json
import sys
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:kiln-openapi"


def call(server, method, path, token=None, body=None, accept="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server + path, data=data, method=method)
    request.add_header("accept", accept)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def pointer(*parts):
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def declared(spec, route, method, status):
    """The response object the document declares, with a shared one's $ref followed."""
    responses = spec["paths"][route][method.lower()]["responses"]
    response = responses.get(str(status))
    if response is None:
        return None, None
    location = ["paths", route, method.lower(), "responses", str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        response = spec["components"]["responses"][name]
        location = ["components", "responses", name]
    return response, location


def main():
    server, token, version_path = sys.argv[1], sys.argv[2], sys.argv[3]
    ns, model, _, version = version_path.split("/")
    spec = json.loads(call(server, "GET", "/api-docs/openapi.json")[2])
    registry = Registry().with_resource(
        BASE, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    m = f"/api/v1/models/{ns}/{model}"
    v = f"{m}/versions/{version}"
    checks = [
        ("GET", "/healthz", "/healthz", None, None, "application/json"),
        ("GET", "/readyz", "/readyz", None, None, "application/json"),
        ("GET", "/.well-known/jwks.json", "/.well-known/jwks.json", None, None, "application/json"),
        ("GET", "/api/v1/me", "/api/v1/me", token, None, "application/json"),
        ("POST", "/api/v1/tokens", "/api/v1/tokens", token, {"name": "ci", "scopes": ["read"]}, "application/json"),
        ("GET", "/api/v1/tokens", "/api/v1/tokens", token, None, "application/json"),
        ("GET", "/api/v1/users", "/api/v1/users", token, None, "application/json"),
        ("GET", "/api/v1/audit", "/api/v1/audit?limit=50", token, None, "application/json"),
        ("GET", "/api/v1/runners", "/api/v1/runners", token, None, "application/json"),
        ("GET", "/api/v1/namespaces", "/api/v1/namespaces", token, None, "application/json"),
        ("GET", "/api/v1/models", "/api/v1/models?limit=10", token, None, "application/json"),
        ("GET", "/api/v1/models", "/api/v1/models", None, None, "application/json"),
        ("GET", "/api/v1/namespaces/{namespace}/models", f"/api/v1/namespaces/{ns}/models", token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}", m, token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}/versions/{version}", v, token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}/versions/{version}/manifest", v + "/manifest", token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}/versions/{version}/manifest", v + "/manifest", token, None, "application/jose"),
        ("GET", "/api/v1/models/{namespace}/{model}/aliases", m + "/aliases", token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}/aliases/{alias}/history", m + "/aliases/production/history", token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifest", m + "/aliases/production/manifest", token, None, "application/json"),
        ("GET", "/api/v1/namespaces/{namespace}/members", f"/api/v1/namespaces/{ns}/members", token, None, "application/json"),
        # Refusals: documented statuses with the shared error body.
        ("GET", "/api/v1/models/{namespace}/{model}", "/api/v1/models/Not_A_Name/m", token, None, "application/json"),
        ("GET", "/api/v1/models", "/api/v1/models?limit=0", token, None, "application/json"),
        ("GET", "/api/v1/audit", "/api/v1/audit?limit=5000", token, None, "application/json"),
        ("GET", "/api/v1/models/{namespace}/{model}/versions/{version}", m + "/versions/absent", token, None, "application/json"),
        ("GET", "/api/v1/me", "/api/v1/me", None, None, "application/json"),
        ("GET", "/api/v1/me", "/api/v1/me", "kiln_not-a-token", None, "application/json"),
        ("POST", "/api/v1/runners", "/api/v1/runners", token, {"name": "x"}, "application/json"),
    ]
    failures = 0
    for method, route, path, credential, body, accept in checks:
        status, content_type, raw = call(server, method, path, credential, body, accept)
        response, location = declared(spec, route, method, status)
        where = f"{method} {path} (accept {accept}) -> {status} {content_type}"
        if response is None:
            print(f"FAIL {where}: status not declared for {method} {route}")
            failures += 1
            continue
        media = response.get("content", {})
        if content_type not in media:
            print(f"FAIL {where}: content type not declared (declared: {sorted(media)})")
            failures += 1
            continue
        document = json.loads(raw) if content_type.endswith("json") else raw.decode()
        ref = BASE + "#/" + pointer(*location, "content", content_type, "schema")
        validator = Draft202012Validator(
            {"$ref": ref}, registry=registry, format_checker=FormatChecker()
        )
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            failures += 1
            print(f"FAIL {where}: {len(errors)} schema errors")
            for error in errors[:5]:
                print(f"     at /{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}")
        else:
            print(f"ok   {where}")
    print(f"{len(checks) - failures} of {len(checks)} real responses match the document")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
