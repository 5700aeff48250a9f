"""kiln's /v2/ endpoint through real OCI clients: skopeo and oras."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import oras.client
import pytest

SERVER = os.environ["KILN_SERVER"]
TOKEN = os.environ["KILN_TOKEN"]
KILN = os.environ["KILN_BIN"]
HOST = f"127.0.0.1:{os.environ['KILN_PORT']}"
CLI_CONFIG = tempfile.mkdtemp(prefix="kiln-oci-cli-")
# Registry credentials (oras's login, skopeo's lookups) stay in a folder of this run, not the user's home.
AUTH_DIR = tempfile.mkdtemp(prefix="kiln-oci-auth-")
os.environ["DOCKER_CONFIG"] = AUTH_DIR
os.environ["REGISTRY_AUTH_FILE"] = os.path.join(AUTH_DIR, "auth.json")


def kiln(*args: str) -> str:
    env = {**os.environ, "XDG_CONFIG_HOME": CLI_CONFIG}
    done = subprocess.run([KILN, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"kiln {' '.join(args)}: {done.stderr}"
    return done.stdout


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert not check or done.returncode == 0, done.stderr
    return done


def files_of(reference: str) -> dict[str, str]:
    namespace, rest = reference.split("/", 1)
    model, version = rest.split(":", 1)
    request = urllib.request.Request(f"{SERVER}/api/v1/models/{namespace}/{model}/versions/{version}")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request) as response:
        return {f["path"]: f["digest"] for f in json.load(response)["files"]}


FINISHED = ("succeeded", "skipped", "failed")


def settled(reference: str) -> None:
    """Waits for the version's whole pipeline: it turns `ready` after the scan step, while the steps that
    make its variants may still run."""
    for _ in range(600):
        shown = json.loads(kiln("show", reference, "--json"))
        if shown["status"] == "failed" or (
            shown["status"] == "ready" and all(job["state"] in FINISHED for job in shown["pipeline"])
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"{reference} did not settle")


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    folder = root / "m"
    subprocess.run([os.environ["KILN_SAMPLE_ONNX"], str(folder)], check=True, capture_output=True)
    (folder / "README.md").write_text("# a model card\n")
    kiln("push", str(folder), "acme/m:1.0.0")
    (folder / "README.md").write_text("# a model card, second edition\n")
    kiln("push", str(folder), "acme/m:1.1.0")
    secret = root / "secret"
    secret.mkdir()
    (secret / "weights.dat").write_bytes(b"private weights")
    kiln("push", str(secret), "acme/secret:1")
    for reference in ("acme/m:1.0.0", "acme/m:1.1.0", "acme/secret:1"):
        settled(reference)
    kiln("alias", "set", "acme/m", "production", "1.0.0")
    kiln("visibility", "acme/m", "public")
    return root


def test_skopeo_copies_a_public_model_to_an_oci_layout_with_kilns_own_digests(models, tmp_path):
    layout = tmp_path / "layout"
    skopeo("copy", "--src-tls-verify=false", f"docker://{HOST}/acme/m:1.0.0", f"oci:{layout}:1.0.0")
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    layers = {layer["annotations"]["org.cncf.model.filepath"]: layer["digest"] for layer in manifest["layers"]}
    assert layers == files_of("acme/m:1.0.0"), "a layer is the file's kiln digest"
    for path, layer_digest in layers.items():
        blob = (layout / "blobs" / "sha256" / layer_digest.split(":", 1)[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer_digest, path


def test_tags_are_versions_and_aliases_and_the_alias_follows_its_moves(models):
    listed = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{HOST}/acme/m").stdout)
    tags = set(listed["Tags"])
    assert {"1.0.0", "1.1.0", "production", "1.0.0-onnx", "1.1.0-onnx"} <= tags, tags
    assert all(t in ("production",) or t.startswith(("1.0.0", "1.1.0")) for t in tags), tags

    def digest(tag: str) -> str:
        inspected = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{HOST}/acme/m:{tag}").stdout
        return "sha256:" + hashlib.sha256(inspected.encode()).hexdigest()

    assert digest("production") == digest("1.0.0")
    kiln("alias", "set", "acme/m", "production", "1.1.0")
    assert digest("production") == digest("1.1.0")
    kiln("alias", "set", "acme/m", "production", "1.0.0")


def test_a_private_model_needs_credentials(models, tmp_path):
    refused = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{HOST}/acme/secret:1", check=False)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower(), refused.stderr
    allowed = skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"admin:{TOKEN}",
        f"docker://{HOST}/acme/secret:1", f"oci:{tmp_path / 'secret'}:1",
    )
    assert allowed.returncode == 0


def test_oras_pulls_by_tag_alias_and_digest(models, tmp_path):
    # The registry token flow: oras follows the Bearer challenge to /v2/token with the Basic login.
    client = oras.client.OrasClient(hostname=HOST, insecure=True)
    client.login(username="admin", password=TOKEN, hostname=HOST, config_path=os.path.join(AUTH_DIR, "config.json"))
    expected = files_of("acme/m:1.0.0")
    for tag in ("1.0.0", "production"):
        out = tmp_path / tag
        pulled = client.pull(target=f"{HOST}/acme/m:{tag}", outdir=str(out))
        got = {str(Path(p).relative_to(out)): "sha256:" + hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in pulled}
        assert got == expected, tag
    # A private model, through the token the Basic login buys.
    secret = client.pull(target=f"{HOST}/acme/secret:1", outdir=str(tmp_path / "secret"))
    assert [Path(p).read_bytes() for p in secret] == [b"private weights"]
    by_digest = tmp_path / "by-digest"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{HOST}/acme/m:1.0.0").stdout
    pinned = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    pulled = client.pull(target=f"{HOST}/acme/m@{pinned}", outdir=str(by_digest))
    assert sorted(str(Path(p).relative_to(by_digest)) for p in pulled) == sorted(expected)


def test_the_signed_manifest_is_a_referrer_that_pyjwt_verifies_with_only_the_jwks(models):
    import jwt

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(f"{SERVER}{path}") as response:
            return response.read()

    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{HOST}/acme/m:1.0.0").stdout
    subject = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    index = json.loads(fetch(f"/v2/acme/m/referrers/{subject}"))
    [referrer] = [m for m in index["manifests"] if m["artifactType"] == "application/vnd.kiln.deployment-manifest.v1+jws"]
    manifest = json.loads(fetch(f"/v2/acme/m/manifests/{referrer['digest']}"))
    assert manifest["subject"]["digest"] == subject
    token = fetch(f"/v2/acme/m/blobs/{manifest['layers'][0]['digest']}").decode()
    keys = jwt.PyJWKClient(f"{SERVER}/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], options={"verify_aud": False})
    assert claims["model"] == "acme/m" and claims["version"] == "1.0.0"
    assert {f["sha256"] for f in claims["sources"]} == set(files_of("acme/m:1.0.0").values())


def test_skopeo_copies_a_layout_back_into_a_new_kiln_version(models, tmp_path):
    layout = tmp_path / "layout"
    skopeo("copy", "--src-tls-verify=false", f"docker://{HOST}/acme/m:1.1.0", f"oci:{layout}:1.1.0")
    skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"admin:{TOKEN}",
        f"oci:{layout}:1.1.0", f"docker://{HOST}/acme/copied:1.1.0",
    )
    settled("acme/copied:1.1.0")
    assert files_of("acme/copied:1.1.0") == files_of("acme/m:1.1.0"), "the same files, no byte stored twice"
    shown = json.loads(kiln("show", "acme/copied:1.1.0", "--json"))
    assert shown["status"] == "ready", shown
    # The tag answers the very manifest skopeo pushed.
    index = json.loads((layout / "index.json").read_text())
    pushed = index["manifests"][0]["digest"]
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", f"admin:{TOKEN}", f"docker://{HOST}/acme/copied:1.1.0"
    ).stdout
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == pushed
    # Versions never change: the same tag with other content is refused.
    other = tmp_path / "other"
    skopeo("copy", "--src-tls-verify=false", f"docker://{HOST}/acme/m:1.0.0", f"oci:{other}:1.0.0")
    refused = skopeo(
        "copy", "--dest-tls-verify=false", "--dest-creds", f"admin:{TOKEN}",
        f"oci:{other}:1.0.0", f"docker://{HOST}/acme/copied:1.1.0", check=False,
    )
    assert refused.returncode != 0 and "denied" in refused.stderr.lower(), refused.stderr


def test_oras_pushes_files_as_a_version_that_goes_through_the_pipeline(models, tmp_path, monkeypatch):
    folder = tmp_path / "push"
    subprocess.run([os.environ["KILN_SAMPLE_ONNX"], str(folder)], check=True, capture_output=True)
    (folder / "README.md").write_text("# pushed with oras\n")
    names = sorted(p.name for p in folder.iterdir())
    monkeypatch.chdir(folder)
    client = oras.client.OrasClient(hostname=HOST, insecure=True)
    client.login(username="admin", password=TOKEN, hostname=HOST, config_path=os.path.join(AUTH_DIR, "config.json"))
    client.push(target=f"{HOST}/acme/orased:1.0.0", files=names)
    settled("acme/orased:1.0.0")
    shown = json.loads(kiln("show", "acme/orased:1.0.0", "--json"))
    assert shown["status"] == "ready", shown
    expected = {name: "sha256:" + hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}
    assert files_of("acme/orased:1.0.0") == expected
    # The pipeline took it like a `kiln push`: the model is a deployable variant, as with any push.
    assert "onnx" in {v["name"] for v in shown["variants"]}, shown
    # Pulled back by the same tag, byte for byte; the version's signature hangs off the pushed manifest.
    out = tmp_path / "pulled"
    pulled = client.pull(target=f"{HOST}/acme/orased:1.0.0", outdir=str(out))
    got = {str(Path(p).relative_to(out)): "sha256:" + hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in pulled}
    assert got == expected
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", f"admin:{TOKEN}", f"docker://{HOST}/acme/orased:1.0.0"
    ).stdout
    subject = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    request = urllib.request.Request(f"{SERVER}/v2/acme/orased/referrers/{subject}")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request) as response:
        referrers = json.load(response)["manifests"]
    assert [r["artifactType"] for r in referrers] == ["application/vnd.kiln.deployment-manifest.v1+jws"]


def test_oras_pushes_a_folder_that_pulls_back_unpacked(models, tmp_path, monkeypatch):
    folder = tmp_path / "bundle"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    monkeypatch.chdir(tmp_path)
    client = oras.client.OrasClient(hostname=HOST, insecure=True)
    client.login(username="admin", password=TOKEN, hostname=HOST, config_path=os.path.join(AUTH_DIR, "config.json"))
    client.push(target=f"{HOST}/acme/bundle:1", files=["bundle"])
    settled("acme/bundle:1")
    # oras sends a folder as one tar+gzip layer to unpack on pull: kiln keeps it as one file.
    assert list(files_of("acme/bundle:1")) == ["bundle"]
    out = tmp_path / "pulled"
    client.pull(target=f"{HOST}/acme/bundle:1", outdir=str(out))
    for name in ("config.json", "tokenizer/vocab.txt"):
        assert (out / "bundle" / name).read_bytes() == (folder / name).read_bytes(), name


def test_the_image_form_unpacks_to_the_files_under_models(models, tmp_path):
    import tarfile

    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{HOST}/acme/m:production-image").stdout)
    assert {layer["mediaType"] for layer in raw["layers"]} == {"application/vnd.oci.image.layer.v1.tar"}
    layout = tmp_path / "image"
    # skopeo compresses uncompressed layers on the way into a layout; the files inside stay the same.
    skopeo("copy", "--src-tls-verify=false", f"docker://{HOST}/acme/m:production-image", f"oci:{layout}:image")
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    root = tmp_path / "rootfs"
    root.mkdir()
    for layer in manifest["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]) as archive:
            assert all(m.name.startswith("models") for m in archive.getmembers())
            archive.extractall(root, filter="data")
    unpacked = {
        str(p.relative_to(root / "models")): "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (root / "models").rglob("*")
        if p.is_file()
    }
    assert unpacked == files_of("acme/m:1.0.0"), "production's files under models/, byte for byte"


def test_the_kserve_storage_initializer_pulls_a_verified_alias(models, tmp_path):
    script = Path(__file__).resolve().parents[2] / "deploy" / "kserve" / "kiln-storage-initializer"
    env = {**os.environ, "KILN_BIN": KILN, "KILN_SERVER": SERVER, "KILN_TOKEN": TOKEN,
           "KILN_MANIFEST_STATE": str(tmp_path / "state.json")}

    def initializer(uri: str, dest: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), uri, str(dest)], env=env, capture_output=True, text=True, timeout=120)

    dest = tmp_path / "mnt" / "models"
    done = initializer("kiln://acme/m@production", dest)
    assert done.returncode == 0, done.stderr
    pulled = {str(p.relative_to(dest)): "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
              for p in dest.rglob("*") if p.is_file()}
    assert pulled == files_of("acme/m:1.0.0")
    variant = initializer("kiln://acme/m@production#onnx", tmp_path / "variant")
    assert variant.returncode == 0, variant.stderr
    assert (tmp_path / "variant" / "model.onnx").is_file()
    for bad in ("s3://bucket/model", "kiln://acme/m"):
        refused = initializer(bad, tmp_path / "bad")
        assert refused.returncode == 2 and "kiln://NAMESPACE/MODEL@ALIAS" in refused.stderr, refused.stderr
