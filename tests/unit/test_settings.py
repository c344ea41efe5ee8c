"""Settings: one parser (web/config.py `Settings`), one rule for booleans, errors that name."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from storage.config import store_from_settings
from storage.s3 import S3Store
from web.app import create_app
from web.config import ConfigError, Settings, load_config

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ("SESSION_COOKIE_SECURE", "ALLOW_PER_PROCESS_LIMITS", "S3_SECURE")
#: The only environment reads outside `Settings`, and why.
OTHER_READS = {
    "storage/s3.py": "SSL_CERT_FILE, the OpenSSL convention for a CA bundle",
    "scoring/pdf.py": "passes the environment on to LibreOffice",
    "workflow/backup.py": "passes the environment on to pg_dump and pg_restore, with PGPASSWORD",
}


def test_nothing_but_settings_reads_the_environment() -> None:
    read = re.compile(r"os\.environ|getenv\(")
    found = {
        path.relative_to(ROOT).as_posix()
        for package in ("workflow", "web", "storage", "scoring")
        for path in (ROOT / package).rglob("*.py")
        if read.search(path.read_text(encoding="utf-8"))
    }
    assert found - {"web/config.py"} <= set(OTHER_READS), found


def test_defaults(tmp_path: Path) -> None:
    config = load_config({"INSTANCE_DIR": str(tmp_path)})
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'fangguanfu.sqlite3'}"
    assert config["SESSION_COOKIE_SECURE"] is False and config["ALLOW_PER_PROCESS_LIMITS"] is False
    assert config["TOKEN_DAYS"] == 90 and config["MAX_UPLOAD_BYTES"] == 200 * 1024 * 1024
    assert config["LOGIN_DELAY_SECONDS"] == 2.0 and config["SESSION_IDLE_MINUTES"] == 30.0
    assert config["VERIFY_LIMIT"] == "30 per minute"
    assert config["BABEL_DEFAULT_LOCALE"] == "zh_Hans_CN"
    assert config["STORAGE"] == {
        "STORAGE_BACKEND": "local",
        "S3_BUCKET": "evidence",
        "S3_REGION": "us-east-1",
        "S3_PART_SIZE_MB": "8",
        "S3_PARALLEL_UPLOADS": "1",
    }
    # an empty variable is its default, as compose's `${X:-}` passes it
    empty = load_config({"INSTANCE_DIR": str(tmp_path), "TOKEN_DAYS": "", "S3_SECURE": ""})
    assert empty["TOKEN_DAYS"] == 90 and "S3_SECURE" not in empty["STORAGE"]


@pytest.mark.parametrize("name", FLAGS)
def test_one_rule_for_every_boolean(name: str, tmp_path: Path) -> None:
    for text, expected in [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ]:
        settings = Settings.read({name: text})
        assert getattr(settings, name) is expected, (name, text)
    for bad in ("ture", "2", "enabled"):
        with pytest.raises(ConfigError, match=rf"{name}: must be true or false.*{bad!r}"):
            Settings.read({name: bad})


def test_the_store_reads_booleans_by_the_same_rule(tmp_path: Path) -> None:
    settings = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT": "minio:9000"}
    settings |= {"S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}
    config = load_config({"INSTANCE_DIR": str(tmp_path), **settings, "S3_SECURE": "off"})
    assert config["STORAGE"]["S3_SECURE"] == "false"
    store = store_from_settings(config["STORAGE"], str(tmp_path))
    assert isinstance(store, S3Store)
    for text, secure in (("off", False), ("1", True), ("No", False)):
        store = store_from_settings({**settings, "S3_SECURE": text}, str(tmp_path))
        url = store.presigned_url("k", timedelta(minutes=1))
        assert url is not None and url.startswith("https://" if secure else "http://"), text


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TOKEN_DAYS", "ninety", "TOKEN_DAYS: Input should be a valid integer"),
        ("TOKEN_DAYS", "0", "TOKEN_DAYS: Input should be greater than or equal to 1"),
        ("MAX_UPLOAD_BYTES", "-1", "MAX_UPLOAD_BYTES: Input should be greater than 0"),
        ("CONVERSION_TIMEOUT", "nan", "CONVERSION_TIMEOUT: Input should be a finite number"),
        ("LOGIN_DELAY_SECONDS", "-2", "LOGIN_DELAY_SECONDS: Input should be greater than or"),
        ("LOGIN_LIMIT_PER_USER", "5 a minute", "LOGIN_LIMIT_PER_USER: must be rate limits"),
        ("VERIFY_LIMIT", "many", "VERIFY_LIMIT: must be rate limits"),
        ("DEFAULT_LOCALE", "xx_YY", "DEFAULT_LOCALE: must be a locale"),
        ("PUBLIC_BASE_URL", "kaohe.example.gov.cn", "PUBLIC_BASE_URL: must start with http"),
        ("STORAGE_BACKEND", "ftp", "STORAGE_BACKEND: Input should be 'local' or 's3'"),
        ("S3_PART_SIZE_MB", "4", "S3_PART_SIZE_MB: Input should be greater than or equal to 5"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.read({name: value})
    assert message in str(caught.value)


def test_every_invalid_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.read({"TOKEN_DAYS": "x", "SESSION_COOKIE_SECURE": "ture", "OTHER": "ignored"})
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid settings:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "SESSION_COOKIE_SECURE",
        "TOKEN_DAYS",
    ]


def test_the_app_refuses_to_start_with_an_invalid_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "ture")
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE: must be true or false"):
        create_app()


def _key_of(instance: str) -> str:
    return str(load_config({"INSTANCE_DIR": instance})["SECRET_KEY"])


def test_an_emptied_secret_key_file_gets_a_new_key_not_an_empty_one(tmp_path: Path) -> None:
    """Emptying instance/secret_key (`: > secret_key`, to sign everyone out) gave the app the
    empty string as its key: it started, and every page was a 500 ("no secret key was set").
    Now a new key is made, kept, and readable by its owner only."""
    first = _key_of(str(tmp_path))
    key_file = tmp_path / "secret_key"
    assert len(first) == 64 and key_file.stat().st_mode & 0o777 == 0o600
    key_file.write_text("  \n")
    second = _key_of(str(tmp_path))
    assert len(second) == 64 and second != first
    assert key_file.read_text() == second and _key_of(str(tmp_path)) == second
    key_file.write_text("")
    app = create_app({"INSTANCE_DIR": str(tmp_path), "DATABASE_URL": "sqlite://"})
    assert app.test_client().get("/login").status_code == 200


def test_a_new_instance_folder_is_owner_only_and_an_existing_one_keeps_its_mode(
    tmp_path: Path,
) -> None:
    """The embedded database, the evidence and the secret key live in the instance folder:
    other local users must not read them. A folder that exists is the operator's to set."""
    made = tmp_path / "new" / "instance"
    load_config({"INSTANCE_DIR": str(made)})
    assert made.stat().st_mode & 0o777 == 0o700
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o750)
    load_config({"INSTANCE_DIR": str(existing)})
    assert existing.stat().st_mode & 0o777 == 0o750
