"""docker-compose.yml, checked as data (Docker does not run here; test_submit.py runs the same
topology natively): its services, ports, health checks and volumes, and one storage URL
shared by the dashboard, the Ray nodes and the hpo command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
PROJECT_SERVICES = ("dashboard", "ray-head", "ray-worker", "hpo")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def interpolate(text: str) -> str:
    """Compose's `${VAR:-default}` with nothing set: the defaults; a required `${VAR:?message}`
    as if the user had set it to `set-VAR`."""
    text = re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", r"set-\1", text)
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def published(service: dict) -> list[tuple[str, str, str]]:
    """A service's published ports as (host address, host port, container port)."""
    out = []
    for entry in service.get("ports") or []:
        parts = interpolate(str(entry)).split(":")
        out.append(tuple(parts) if len(parts) == 3 else ("", *parts[-2:]))
    return out


def env(service: dict) -> dict:
    return service.get("environment") or {}


def test_the_topology_has_its_services_ports_and_health_checks(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *PROJECT_SERVICES}
    assert ("127.0.0.1", "8265", "8265") in published(services["ray-head"])  # dashboard + Jobs API
    assert "--dashboard-port=8265" in services["ray-head"]["command"]
    assert "--dashboard-host=0.0.0.0" in services["ray-head"]["command"]
    assert ("127.0.0.1", "8080", "8080") in published(services["dashboard"])
    assert "--address=ray-head:6379" in services["ray-worker"]["command"]
    assert "--port=6379" in services["ray-head"]["command"]
    assert services["ray-worker"]["deploy"]["replicas"] >= 2
    for name in ("postgres", "dashboard", "ray-head", "ray-worker"):
        assert services[name]["healthcheck"]["test"], name
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["dashboard"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_project_service_is_built_from_the_repo_dockerfile_with_the_project(compose):
    for name in PROJECT_SERVICES:
        build = compose["services"][name]["build"]
        dockerfile = REPO / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), name
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install .*\.(\s|$)", text, re.MULTILINE)  # the project itself
    assert "ray[default" in text  # the Jobs API needs Ray's dashboard extras
    for package in ("hpo", "trainer", "studies"):
        assert f"COPY {package} {package}" in text


def test_the_dashboard_and_the_ray_nodes_share_one_storage_url(compose):
    services = compose["services"]
    urls = {name: env(services[name]).get("HPO_STORAGE") for name in PROJECT_SERVICES}
    assert len(set(urls.values())) == 1 and None not in urls.values(), urls
    url = make_url(interpolate(urls["dashboard"]))
    postgres = env(services["postgres"])
    assert url.get_backend_name() == "postgresql"
    assert url.host == "postgres" and url.port == 5432
    assert url.database == postgres["POSTGRES_DB"]
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == interpolate(postgres["POSTGRES_PASSWORD"])
    assert "$$HPO_STORAGE" in " ".join(services["dashboard"]["command"])


def test_volumes_keep_the_database_and_the_checkpoints(compose):
    services = compose["services"]
    assert {"pgdata", "checkpoints"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in ("ray-head", "ray-worker", "hpo"):
        assert "checkpoints:/data/checkpoints" in services[name]["volumes"], name
        assert env(services[name])["HPO_RAY_STORAGE_PATH"].startswith("/data/checkpoints/")


def test_ray_token_authentication_is_on_and_the_token_comes_from_the_environment(compose):
    for name in ("ray-head", "ray-worker", "hpo"):
        variables = env(compose["services"][name])
        assert variables["RAY_AUTH_MODE"] == "token"
        assert variables["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")  # never a literal


def test_no_port_is_published_beyond_the_host_unless_the_user_names_an_address(compose):
    """Docker publishes a port without a host address on every interface of the host: the study
    database and the dashboard would be open to anyone who can reach it."""
    seen = 0
    for name, service in compose["services"].items():
        for entry in service.get("ports") or []:
            assert str(entry).startswith("${HPO_BIND_ADDRESS:-127.0.0.1}:"), (name, entry)
            address, _, _ = published(service)[0]
            assert address == "127.0.0.1", (name, entry)
            seen += 1
    assert seen == 3  # postgres, the dashboard, the Ray head


def test_no_secret_has_a_default(compose):
    """Every password and token must come from the environment: `${VAR:?message}` makes compose
    refuse to start without it, where `${VAR:-default}` would start with a known secret."""
    text = (REPO / "docker-compose.yml").read_text()
    references = re.findall(r"\$\{([A-Z_]*(?:PASSWORD|TOKEN)[A-Z_]*)(:[?-])?", text)
    assert {name for name, _ in references} == {"POSTGRES_PASSWORD", "RAY_AUTH_TOKEN"}
    for name, operator in references:
        assert operator == ":?", f"${{{name}}} must be required, not defaulted"
    postgres = env(compose["services"]["postgres"])
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_the_image_can_be_built_with_a_cuda_torch_for_gpu_workers(compose):
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert "ARG TORCH_INDEX=cpu" in text
    assert "whl/${TORCH_INDEX}" in text
    assert compose["x-project"]["build"]["args"]["TORCH_INDEX"] == "${TORCH_INDEX:-cpu}"
