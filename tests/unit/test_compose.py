"""docker-compose.yml and .env.example, checked without a Docker engine.

The official compose JSON schema ships only in packages we do not depend on (the last
``docker-compose`` on PyPI, 1.29.2, carries one but requires PyYAML < 6), so the file is checked
against a schema of the compose structure written here with jsonschema, plus what a schema
cannot say: named volumes are declared, health-gated start order, and the app's variables are
exactly the settings web/config.py's `Settings` declares — proven by building the app's
configuration and object store from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from storage.config import store_from_settings
from storage.s3 import S3Store
from web.config import Settings, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

#: Variables compose itself needs that the app never reads (they go into the database URLs).
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "OWNER_DB_PASSWORD", "APP_DB_PASSWORD"}
#: Settings only the one-shot migrate service passes (the app never sees these passwords).
MIGRATE_ONLY = {"MIGRATION_DATABASE_URL", "DATABASE_ADMIN_URL"}

_DURATION = {"type": "string", "pattern": r"^(\d+(\.\d+)?(us|ms|s|m|h))+$"}
_NAME = "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
_ENVIRONMENT = {
    "oneOf": [
        {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*$"},
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
        {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*(=.*)?$"}},
    ]
}

#: The part of the Compose Specification this project uses, with its real shapes and types.
COMPOSE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["services"],
    "properties": {
        "name": {"type": "string"},
        "services": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {"$ref": "#/$defs/service"},
        },
        "volumes": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {"type": ["object", "null"]},
        },
        "networks": {"type": "object"},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
    "$defs": {
        "service": {
            "type": "object",
            "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "build": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                "command": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                },
                "environment": _ENVIRONMENT,
                "env_file": {"oneOf": [{"type": "string"}, {"type": "array"}]},
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "pattern": r"^(\d+(\.\d+){3}:)?\d+:\d+(/(tcp|udp))?$",
                    },
                },
                "volumes": {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:/"}},
                "depends_on": {
                    "oneOf": [
                        {"type": "array", "items": {"type": "string"}},
                        {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["condition"],
                                "properties": {
                                    "condition": {
                                        "enum": [
                                            "service_started",
                                            "service_healthy",
                                            "service_completed_successfully",
                                        ]
                                    },
                                    "restart": {"type": "boolean"},
                                    "required": {"type": "boolean"},
                                },
                                "additionalProperties": False,
                            },
                        },
                    ]
                },
                "healthcheck": {
                    "type": "object",
                    "required": ["test"],
                    "properties": {
                        "test": {
                            "oneOf": [
                                {"type": "string"},
                                {
                                    "type": "array",
                                    "minItems": 2,
                                    "prefixItems": [{"enum": ["CMD", "CMD-SHELL"]}],
                                    "items": {"type": "string"},
                                },
                            ]
                        },
                        "interval": _DURATION,
                        "timeout": _DURATION,
                        "start_period": _DURATION,
                        "start_interval": _DURATION,
                        "retries": {"type": "integer", "minimum": 1},
                        "disable": {"type": "boolean"},
                    },
                    "additionalProperties": False,
                },
                "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                "profiles": {"type": "array", "items": {"type": "string", "pattern": _NAME}},
            },
            "additionalProperties": False,
        }
    },
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    """The active settings of .env.example, as compose would read a copied .env."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            values[match[1]] = match[2]
    return values


def documented_names() -> set[str]:
    """Every setting .env.example lists, active or commented out (``# NAME=value``)."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def names_read_by_config() -> set[str]:
    """Return the variable names the app reads: the fields of its one parser, `Settings`.

    Nothing else in the product reads the environment (tests/unit/test_settings.py).
    """
    return set(Settings.model_fields)


_VARIABLE = re.compile(r"\$\$|\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Expand compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``."""

    def expand(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, operator, argument = match[1], match[2], match[3]
        current = env.get(name)
        is_unset = current is None or (current == "" and operator and operator.startswith(":"))
        if operator in (":-", "-") and is_unset:
            return argument
        if operator in (":?", "?") and is_unset:
            raise LookupError(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(expand, value)


def environment_of(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {name: interpolate(str(value), env) for name, value in raw.items()}


def variables_in(text: str) -> set[str]:
    return {m[1] for m in _VARIABLE.finditer(text) if m[1]}


def test_matches_the_compose_structure(compose: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(COMPOSE_SCHEMA)
    jsonschema.Draft202012Validator(COMPOSE_SCHEMA).validate(compose)


def test_schema_rejects_what_compose_rejects(compose: dict[str, Any]) -> None:
    """The hand-written schema has teeth: typical mistakes fail it."""
    validator = jsonschema.Draft202012Validator(COMPOSE_SCHEMA)
    mistakes = [
        {"services": {"app": {"image": "x", "depends_on": {"db": {"condition": "healthy"}}}}},
        {"services": {"app": {"image": "x", "healthcheck": {"test": ["RUN", "true"]}}}},
        {"services": {"app": {"image": "x", "healthcheck": {"test": "true", "interval": 5}}}},
        {"services": {"app": {"build": ".", "enviroment": {"A": "b"}}}},
        {"services": {"app": {"command": "true"}}},
        {"services": {"app": {"image": "x"}}, "volume": {"data": None}},
    ]
    for mistake in mistakes:
        assert not validator.is_valid(mistake), mistake


def test_services_health_checks_and_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"app", "db", "minio", "redis", "migrate", "worker", "backup"}
    # The backup runs on demand only (a profile `up` does not start), writes its own volume
    # and verifies what it wrote.
    backup = services["backup"]
    assert backup["profiles"] == ["backup"] and backup["restart"] == "no"
    assert "backups:/backups" in backup["volumes"]
    command = " ".join(backup["command"].split())
    assert "flask --app wsgi backup create" in command and "backup verify" in command
    assert "$$(date" in command  # escaped for compose: the shell, not compose, expands it
    for name, service in services.items():
        if service.get("restart") == "no":  # one-shot: gated by completing, not by health
            continue
        assert "healthcheck" in service, f"{name} has no health check"
    assert services["app"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "db": {"condition": "service_healthy"},
        "minio": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["worker"]["depends_on"] == services["app"]["depends_on"]
    assert services["worker"]["command"] == "flask --app wsgi worker"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == "flask --app wsgi init --create-roles"
    command = " ".join(services["app"]["command"].split())
    assert command.startswith("gunicorn --workers 4") and command.endswith("wsgi:app")
    assert services["minio"]["command"].startswith("server /data")


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    used = set()
    for service in compose["services"].values():
        for spec in service.get("volumes", []):
            source = spec.split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == set(compose.get("volumes") or {})
    assert used == {"pgdata", "miniodata", "instance", "backups"}


def test_app_variables_are_exactly_settings_the_app_reads(
    compose: dict[str, Any], example_env: dict[str, str]
) -> None:
    read = names_read_by_config()
    # The extraction must find the known settings, or this test would prove nothing.
    assert {"DATABASE_URL", "SECRET_KEY", "STORAGE_BACKEND", "S3_BUCKET", "S3_SECURE"} <= read
    app_env = environment_of(compose["services"]["app"], example_env)
    assert set(app_env) <= read, f"not read by the app: {set(app_env) - read}"
    migrate_env = environment_of(compose["services"]["migrate"], example_env)
    assert set(migrate_env) <= read, f"not read by the app: {set(migrate_env) - read}"
    assert set(migrate_env) >= MIGRATE_ONLY and not MIGRATE_ONLY & set(app_env)
    # The backup reads the database as the owner and the same bucket as the app.
    backup_env = environment_of(compose["services"]["backup"], example_env)
    assert set(backup_env) <= read, f"not read by the app: {set(backup_env) - read}"
    storage = {k: v for k, v in app_env.items() if k.startswith(("S3_", "STORAGE_"))}
    assert storage.items() <= backup_env.items()
    assert backup_env["MIGRATION_DATABASE_URL"] == migrate_env["MIGRATION_DATABASE_URL"]
    # The worker runs the same app: the same settings, the queue on Redis.
    worker_env = environment_of(compose["services"]["worker"], example_env)
    assert worker_env == app_env
    assert app_env["JOBS_BROKER_URL"] == "redis://redis:6379/1"
    # Every setting the app reads is either set by compose or left at a default on purpose.
    assert read - set(app_env) <= {"STORAGE_LOCAL_ROOT", "ALLOW_PER_PROCESS_LIMITS"} | MIGRATE_ONLY


def test_app_configuration_builds_from_compose(
    compose: dict[str, Any], example_env: dict[str, str], tmp_path: Path
) -> None:
    services = compose["services"]
    app_env = environment_of(services["app"], example_env)
    app_env["INSTANCE_DIR"] = str(tmp_path)  # /srv/instance does not exist here
    config = load_config(app_env)
    assert config["MAX_UPLOAD_BYTES"] == 200 * 1024 * 1024
    assert config["TOKEN_DAYS"] == 90 and config["SESSION_COOKIE_SECURE"] is False
    assert len(config["SECRET_KEY"]) == 64  # empty in compose: generated into the instance

    store = store_from_settings(config["STORAGE"], config["INSTANCE_DIR"])
    assert isinstance(store, S3Store)
    # The bucket is the S3_BUCKET setting, read the same way the tests configure the app.
    assert store.bucket == app_env["S3_BUCKET"] == "evidence"
    # The service name, MinIO's API port and plain HTTP inside the compose network (signing a
    # URL needs no server).
    url = store.presigned_url("k", timedelta(minutes=1))
    assert url is not None and url.startswith("http://minio:9000/evidence/k?")

    minio_env = environment_of(services["minio"], example_env)
    assert minio_env["MINIO_ROOT_USER"] == app_env["S3_ACCESS_KEY"]
    assert minio_env["MINIO_ROOT_PASSWORD"] == app_env["S3_SECRET_KEY"]
    assert len(minio_env["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses to start otherwise

    db_env = environment_of(services["db"], example_env)
    migrate_env = environment_of(services["migrate"], example_env)
    database = f"@db:5432/{db_env['POSTGRES_DB']}"
    # The app is the data-only role; the owner migrates; the superuser only creates roles.
    assert (
        app_env["DATABASE_URL"]
        == migrate_env["DATABASE_URL"]
        == (f"postgresql+psycopg://fgf_app:{example_env['APP_DB_PASSWORD']}{database}")
    )
    assert migrate_env["MIGRATION_DATABASE_URL"] == (
        f"postgresql+psycopg://fgf_owner:{example_env['OWNER_DB_PASSWORD']}{database}"
    )
    assert migrate_env["DATABASE_ADMIN_URL"] == (
        f"postgresql+psycopg://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}{database}"
    )
    assert app_env["REDIS_URL"] == "redis://redis:6379/0"
    healthcheck = " ".join(services["db"]["healthcheck"]["test"])
    assert f"-U {db_env['POSTGRES_USER']}" in healthcheck
    assert f"-d {db_env['POSTGRES_DB']}" in healthcheck


def test_secrets_have_no_defaults(compose: dict[str, Any]) -> None:
    """Without a .env, compose refuses to start rather than run with published passwords."""
    for service in ("db", "minio", "app", "migrate"):
        with pytest.raises(LookupError):
            environment_of(compose["services"][service], {})


def test_env_example_lists_every_setting(compose: dict[str, Any]) -> None:
    documented = documented_names()
    read = names_read_by_config()
    assert read <= documented, f"undocumented: {read - documented}"
    assert documented <= read | COMPOSE_ONLY, f"not read by anything: {documented - read}"
    used_by_compose = variables_in(COMPOSE.read_text(encoding="utf-8"))
    assert used_by_compose <= documented, f"compose needs: {used_by_compose - documented}"
    # Only values compose interpolates are active, so a copied .env does not redirect a
    # local `flask` run (which also loads .env) to the compose network.
    active = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert active <= used_by_compose, f"active but unused by compose: {active - used_by_compose}"
