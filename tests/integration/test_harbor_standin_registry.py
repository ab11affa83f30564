"""The test-bed Harbor stand-in as Docker uses it: login, push and pull through its nginx.

The stand-in comes from the offline-installer archive that ``tests/images/build-harbor-standin.sh``
builds (run here; it does nothing when the archive is up to date): the archive's own
``prepare`` turns a harbor.yml into the Compose file, and its service runs as a container on a
network of its own. A second container runs its own Docker Engine (the host's engine cannot be
pointed at an HTTP registry), so ``docker login``, ``docker push`` and ``docker pull`` are the
real commands, through nginx, the fake's access decisions and the distribution registry.
The image pushed is a one-file image made with ``docker import``. The client image (the node
image plus Debian's docker.io) is built on the first run and kept, keyed on the node image.

Needs Docker and the node image (``make images``); the archive goes to ``$BAI_ARTIFACTS_DIR``
(default ./artifacts). About 20 s when the archive and the client image exist; building them
adds about 50 s and 30 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fakes.harbor.testing import basic, call  # noqa: E402

ARTIFACTS = Path(os.environ.get("BAI_ARTIFACTS_DIR", ROOT / "artifacts"))
NODE_IMAGE = os.environ.get("BAI_NODE_IMAGE", "backendai-testbed/node:trixie")
VERSION = os.environ.get("HARBOR_STANDIN_VERSION", "v2.13.2-standin")
ARCHIVE = ARTIFACTS / "harbor" / f"harbor-offline-installer-{VERSION}.tgz"
STANDIN_IMAGE = f"backendai-testbed/harbor-standin:{VERSION}"
APT_CACHE = ROOT / ".cache" / "harbor-regtest" / "apt"

NETWORK = "bai-harbor-regtest"
STANDIN = "bai-harbor-regtest-standin"
CLIENT = "bai-harbor-regtest-client"
HOST = "harbor.regtest.internal"
REGISTRY = f"{HOST}:8080"
CLIENT_LABEL = "backendai-harbor-regtest"
CLIENT_PACKAGES = "docker.io docker-cli ca-certificates"

ADMIN_PASSWORD = "AdminPw-Harbor-1234"
DEV_PASSWORD = "DevPw-Harbor-5678"
OUTSIDER_PASSWORD = "OutPw-Harbor-9012"

# What Docker-in-Docker needs on this engine (as for the test-bed nodes): every capability but
# SYS_RESOURCE, no seccomp/AppArmor confinement, all devices, the host's cgroups.
DIND_OPTIONS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--device-cgroup-rule", "a *:* rwm", "--cgroupns", "host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", "/var/lib/docker",
    "--tmpfs", "/run", "--tmpfs", "/tmp:exec",
]


def docker(*args, check=True, timeout=600, input=None):
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed (rc={proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def client(script, check=True, input=None, timeout=300):
    """A shell script in the client container, whose docker talks to its own engine."""
    return docker("exec", "-i", CLIENT, "bash", "-c", script, check=check, input=input,
                  timeout=timeout)


def login(user, password):
    client(f"docker login -u {user} --password-stdin {REGISTRY}", input=password + "\n")


def logout():
    client(f"docker logout {REGISTRY}")


def output(proc):
    return proc.stdout + proc.stderr


# -- the stand-in --------------------------------------------------------------------------


def standin_archive():
    """The archive (built or refreshed here) and its image, loaded when the engine lacks it."""
    build = subprocess.run([str(ROOT / "tests" / "images" / "build-harbor-standin.sh"),
                            str(ARTIFACTS)], capture_output=True, text=True, timeout=1800,
                           check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wanted = Path(f"{ARCHIVE}.image-id").read_text(encoding="utf-8").strip()
    have = docker("image", "inspect", "-f", "{{.Id}}", STANDIN_IMAGE, check=False).stdout.strip()
    if have != wanted:
        with tarfile.open(ARCHIVE) as archive:
            bundle = archive.extractfile(f"harbor/harbor.{VERSION}.tar.gz").read()
        proc = subprocess.run(["docker", "load"], input=bundle, capture_output=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return ARCHIVE


def prepare(workdir):
    """Unpack the installer, write harbor.yml, run its prepare: the Compose service."""
    with tarfile.open(standin_archive()) as archive:
        # everything but the image bundle (loaded above when needed)
        members = [m for m in archive.getmembers() if not m.name.endswith(".tar.gz")]
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(workdir, members=members, **options)  # noqa: S202 - built above
    harbor = workdir / "harbor"
    data = workdir / "data"
    conf = yaml.safe_load((harbor / "harbor.yml.tmpl").read_text(encoding="utf-8"))
    conf.pop("https")
    conf.update(hostname=HOST, http={"port": 8080}, harbor_admin_password=ADMIN_PASSWORD,
                data_volume=str(data))
    (harbor / "harbor.yml").write_text(yaml.safe_dump(conf), encoding="utf-8")
    proc = subprocess.run(["./prepare"], cwd=harbor, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compose = yaml.safe_load((harbor / "docker-compose.yml").read_text(encoding="utf-8"))
    return harbor, compose["services"]["core"]


def start_standin(harbor, service):
    """The Compose service as a plain container on the test network (reachable as HOST)."""
    volumes = [arg for volume in service["volumes"] for arg in ("-v", volume)]
    env_files = [arg for name in service["env_file"]
                 for arg in ("--env-file", str(harbor / name))]
    docker("run", "-d", "--name", STANDIN, "--network", NETWORK, "--network-alias", HOST,
           "-p", "127.0.0.1::8080", *env_files, *volumes, service["image"], *service["command"])


def standin_url():
    port = docker("port", STANDIN, "8080/tcp").stdout.split()[0].rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}"


def wait_until_up(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v2.0/ping", timeout=3) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            logs = docker("logs", STANDIN, check=False)
            raise AssertionError("the stand-in did not come up:\n" + output(logs)[-4000:])
        time.sleep(0.5)


# -- the client ----------------------------------------------------------------------------


def client_image():
    """The node image with Debian's Docker Engine, built once per node image."""
    node_id = docker("image", "inspect", "-f", "{{.Id}}", NODE_IMAGE).stdout.strip()
    key = hashlib.sha256(f"{node_id} {CLIENT_PACKAGES}".encode()).hexdigest()[:12]
    image = f"backendai-testbed/docker-client:{key}"
    if docker("image", "inspect", image, check=False).returncode == 0:
        return image
    for old in docker("image", "ls", "-q", "--filter", f"label={CLIENT_LABEL}").stdout.split():
        docker("rmi", "-f", old, check=False)
    APT_CACHE.mkdir(parents=True, exist_ok=True)
    builder = f"{CLIENT}-build"
    docker("rm", "-f", builder, check=False)
    try:
        docker("run", "--name", builder, "-v", f"{APT_CACHE}:/var/cache/apt/archives",
               NODE_IMAGE, "bash", "-euc",
               "export DEBIAN_FRONTEND=noninteractive; rm -f /etc/apt/apt.conf.d/docker-clean; "
               "apt-get update -qq; apt-get install -y -qq --no-install-recommends "
               f"{CLIENT_PACKAGES} >/dev/null; rm -rf /var/lib/apt/lists/*", timeout=1200)
        docker("commit", "-c", f"LABEL {CLIENT_LABEL}=1", "-c", "ENTRYPOINT []", builder, image)
    finally:
        docker("rm", "-f", builder, check=False)
    return image


def start_client(image):
    docker("run", "-d", "--name", CLIENT, "--network", NETWORK, *DIND_OPTIONS, image,
           "dockerd", "--insecure-registry", REGISTRY, "--bridge", "none", "--iptables=false",
           "--ip6tables=false", "--log-level", "warn")
    deadline = time.monotonic() + 60
    while client("docker info >/dev/null 2>&1", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError("the client's engine did not start:\n"
                                 + output(docker("logs", CLIENT, check=False))[-4000:])
        time.sleep(0.5)


# -- the API -------------------------------------------------------------------------------


def api(url, method, path, user=None, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if user:
        headers.update(basic(*user))
    data = json.dumps(body).encode() if body is not None else None
    status, answer_headers, raw = call(url + path, headers, method=method, data=data, timeout=30)
    return status, answer_headers, json.loads(raw) if raw.strip() else None


ADMIN = ("admin", ADMIN_PASSWORD)
DEV = ("dev", DEV_PASSWORD)
OUTSIDER = ("outsider", OUTSIDER_PASSWORD)


def seed(url):
    """A private project "team" with developer dev; outsider is no member of it."""
    for name, password in (DEV, OUTSIDER):
        status, _, body = api(url, "POST", "/api/v2.0/users", ADMIN, {
            "username": name, "password": password, "email": f"{name}@example.com",
            "realname": name})
        assert status == 201, body
    status, _, body = api(url, "POST", "/api/v2.0/projects", ADMIN,
                          {"project_name": "team", "metadata": {"public": "false"}})
    assert status == 201, body
    status, _, body = api(url, "POST", "/api/v2.0/projects/team/members", ADMIN,
                          {"role_id": 2, "member_user": {"username": "dev"}})
    assert status == 201, body


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bed():
    if shutil.which("docker") is None:
        pytest.skip("needs Docker")
    if docker("image", "inspect", NODE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"node image {NODE_IMAGE} is missing: run `make images artifacts` first")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bai-harbor-regtest-"))
    for name in (STANDIN, CLIENT):
        docker("rm", "-fv", name, check=False)
    docker("network", "rm", NETWORK, check=False)
    try:
        harbor, service = prepare(workdir)
        image = client_image()
        docker("network", "create", NETWORK)
        start_standin(harbor, service)
        url = standin_url()
        wait_until_up(url)
        seed(url)
        start_client(image)
        client("mkdir -p /tmp/img && echo hello >/tmp/img/hello.txt")
        print(f"\ntest bed ready in {time.monotonic() - started:.0f}s")
        yield {"url": url, "service": service, "harbor": harbor, "pushed": {}}
    finally:
        for name in (CLIENT, STANDIN):
            if os.environ.get("BAI_KEEP_LOGS"):
                print(output(docker("logs", name, check=False))[-6000:])
            docker("rm", "-fv", name, check=False)
        docker("network", "rm", NETWORK, check=False)
        # the stand-in wrote data_volume as root: clear it from a container
        docker("run", "--rm", "-v", f"{workdir}:/w", STANDIN_IMAGE, "rm", "-rf", "/w/data",
               check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def make_image(ref):
    client(f"tar -C /tmp/img -c . | docker import - {ref} >/dev/null")


def push(ref):
    proc = client(f"docker push {ref}", check=False)
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", proc.stdout)
    return proc, digest.group(1) if digest else None


# -- the tests, in order -------------------------------------------------------------------


def test_anonymous_push_is_refused(bed):
    make_image(f"{REGISTRY}/team/tiny:1")
    make_image(f"{REGISTRY}/library/tiny:1")
    for ref in (f"{REGISTRY}/team/tiny:1", f"{REGISTRY}/library/tiny:1"):
        proc, digest = push(ref)
        assert proc.returncode != 0 and digest is None, output(proc)
        assert re.search(r"unauthorized|authentication required", output(proc)), output(proc)


def test_member_pushes_and_the_api_lists_the_tag(bed):
    login(*DEV)
    proc, digest = push(f"{REGISTRY}/team/tiny:1")
    assert proc.returncode == 0 and digest, output(proc)
    bed["pushed"]["team"] = digest
    url = bed["url"]

    status, _, repos = api(url, "GET", "/api/v2.0/projects/team/repositories?page_size=30", DEV)
    assert status == 200 and [repo["name"] for repo in repos] == ["team/tiny"]
    assert repos[0]["artifact_count"] == 1
    status, headers, artifacts = api(
        url, "GET", "/api/v2.0/projects/team/repositories/tiny/artifacts?page_size=30", DEV)
    assert status == 200 and headers["X-Total-Count"] == "1"
    (artifact,) = artifacts
    assert artifact["digest"] == digest
    assert [tag["name"] for tag in artifact["tags"]] == ["1"]
    assert artifact["manifest_media_type"] in (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json")
    assert artifact["type"] == "IMAGE" and artifact["size"] > 0
    status, _, by_tag = api(url, "GET",
                            "/api/v2.0/projects/team/repositories/tiny/artifacts/1", DEV)
    assert status == 200 and by_tag["digest"] == digest


def test_member_pulls_it_back(bed):
    ref = f"{REGISTRY}/team/tiny:1"
    client(f"docker rmi {ref} >/dev/null")
    proc = client(f"docker pull {ref}", check=False)
    assert proc.returncode == 0, output(proc)
    digests = client(f"docker image inspect -f '{{{{json .RepoDigests}}}}' {ref}").stdout
    assert f"{REGISTRY}/team/tiny@{bed['pushed']['team']}" in json.loads(digests)


def test_a_private_project_is_closed_to_others(bed):
    ref = f"{REGISTRY}/team/tiny:1"
    client(f"docker rmi {ref} >/dev/null")
    logout()
    proc = client(f"docker pull {ref}", check=False)
    assert proc.returncode != 0, output(proc)
    login(*OUTSIDER)
    proc = client(f"docker pull {ref}", check=False)
    assert proc.returncode != 0, output(proc)
    assert re.search(r"denied|forbidden", output(proc), re.IGNORECASE), output(proc)
    proc, _ = push(ref.replace(":1", ":2"))
    assert proc.returncode != 0, output(proc)
    assert api(bed["url"], "GET", "/api/v2.0/projects/team/repositories/tiny/artifacts",
               OUTSIDER)[0] == 403
    logout()


def test_a_public_project_is_open_for_pulling(bed):
    login(*ADMIN)
    proc, digest = push(f"{REGISTRY}/library/tiny:1")
    assert proc.returncode == 0 and digest, output(proc)
    logout()
    client(f"docker rmi {REGISTRY}/library/tiny:1 >/dev/null")
    proc = client(f"docker pull {REGISTRY}/library/tiny:1", check=False)
    assert proc.returncode == 0, output(proc)
    status, _, artifacts = api(bed["url"], "GET",
                               "/api/v2.0/projects/library/repositories/tiny/artifacts")
    assert status == 200 and [a["digest"] for a in artifacts] == [digest]


def test_registry_answers_through_nginx(bed):
    url = bed["url"]
    dev = basic("dev", DEV_PASSWORD)
    outsider = basic("outsider", OUTSIDER_PASSWORD)

    def get(path, headers):
        return call(url + path, headers, timeout=30)

    assert get("/v2/", dev)[0] == 200  # Harbor accepts basic auth on the registry base
    manifest = "/v2/team/tiny/manifests/1"
    status, headers, _ = get(manifest, {**dev, "Accept":
                                        "application/vnd.docker.distribution.manifest.v2+json"})
    assert status == 200 and headers["Docker-Content-Digest"] == bed["pushed"]["team"]
    status, headers, body = get(manifest, {})
    assert status == 401
    assert headers.get_all("Www-Authenticate") == [
        f'Bearer realm="http://{url.split("://")[1]}/service/token",service="harbor-registry"']
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    status, _, body = get(manifest, outsider)
    assert status == 403 and json.loads(body)["errors"][0]["code"] == "DENIED"
    assert get("/v2/_catalog", dev)[0] == 403


def test_stops_on_sigterm_and_keeps_its_data(bed):
    started = time.monotonic()
    docker("stop", "-t", "20", STANDIN)
    took = time.monotonic() - started
    state = json.loads(docker("inspect", "-f", "{{json .State}}", STANDIN).stdout)
    logs = output(docker("logs", STANDIN))
    assert state["ExitCode"] == 0 and took < 15, (took, state, logs[-2000:])
    assert "stopping on SIGTERM" in logs
    docker("start", STANDIN)
    url = standin_url()
    wait_until_up(url)
    status, _, artifacts = api(url, "GET",
                               "/api/v2.0/projects/team/repositories/tiny/artifacts", DEV)
    assert status == 200 and [a["digest"] for a in artifacts] == [bed["pushed"]["team"]]
