"""Issue 11, finding 3: the app connected as the owner and a superuser, so it could switch the
audit trigger off. `init --create-roles` makes an owner role for migrations and an app role that
can only use data; here the app role tries every way around the trail and is refused.

Runs on PostgreSQL only (roles are a PostgreSQL feature), in a database of its own
(<test database>_roles) with roles named after it, so parallel runs do not meet.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, make_url, select, text
from sqlalchemy.exc import DBAPIError

from storage.local import LocalStore
from tests.conftest import throwaway_database
from tests.factories import add_evidence
from web.app import create_app
from workflow import actions
from workflow.db import make_sessionmaker, migrate
from workflow.evidence import remove_evidence
from workflow.models import Item
from workflow.scheme import Scheme
from workflow.setup import install_scheme
from workflow.users import create_user, issue_token, set_password

pytestmark = pytest.mark.backend("postgresql")
LONG = "a long pass phrase for the role test"


@pytest.fixture
def role_urls(engine: Engine) -> Iterator[dict[str, str]]:
    """A fresh database, first migrated by the superuser (as older deployments did)."""
    superuser = engine.url
    name = f"{superuser.database}_roles"
    with throwaway_database(superuser.render_as_string(hide_password=False), "roles") as url:
        admin = make_url(url)
        urls = {
            "admin": url,
            "owner": admin.set(
                username=f"{name}_owner", password="owner-Secret%1"
            ).render_as_string(hide_password=False),
            "app": admin.set(username=f"{name}_app", password="app-Secret%2").render_as_string(
                hide_password=False
            ),
        }
        legacy = create_engine(urls["admin"])
        migrate(legacy)
        legacy.dispose()
        yield urls
    # Leave nothing behind on a shared server: the database is dropped, then its two roles.
    cleanup = create_engine(superuser, isolation_level="AUTOCOMMIT")
    with cleanup.connect() as conn:
        for role in (f"{name}_app", f"{name}_owner"):
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
    cleanup.dispose()


def _app(urls: dict[str, str], tmp_path: Path) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": urls["app"],
            "MIGRATION_DATABASE_URL": urls["owner"],
            "DATABASE_ADMIN_URL": urls["admin"],
            "INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "roles",
            "STORAGE": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "ev")},
        }
    )


def _refused(conn_engine: Engine, statement: str) -> str:
    with conn_engine.connect() as conn:
        with pytest.raises(DBAPIError) as caught:
            conn.exec_driver_sql(statement)
        conn.rollback()
    return str(caught.value.orig)


def test_audit_trigger_cannot_be_switched_off_by_the_app_role(
    role_urls: dict[str, str], tmp_path: Path, scheme_2018: Scheme
) -> None:
    app = _app(role_urls, tmp_path)
    runner = app.test_cli_runner()
    for _ in range(2):  # idempotent: a second run changes nothing and still succeeds
        result = runner.invoke(args=["init", "--create-roles"])
        assert result.exit_code == 0, result.output
        assert "警告" not in result.output
    # The app role does the real work: users, uploads, every step to a score, a removal.
    with make_sessionmaker(app.extensions["engine"])() as session:
        assessment = install_scheme(session, scheme_2018)  # installed by init: returned as is
        dep = assessment.departments[0]
        member = create_user(session, "member", ["department"], department=dep, password=LONG)
        reviewer = create_user(session, "reviewer", ["reviewer"])
        office = create_user(session, "office", ["verifier", "scorer"])
        store = LocalStore(tmp_path / "ev")
        item = (
            session.execute(select(Item).where(Item.department_id == dep.id).order_by(Item.id))
            .scalars()
            .first()
        )
        assert item is not None
        extra = add_evidence(session, store, item, member, name="多余.pdf")
        remove_evidence(session, extra.id, member)
        add_evidence(session, store, item, member)
        actions.submit_item(session, item.id, member, item.version)
        actions.review_item(session, item.id, reviewer, item.version)
        checks = {c["code"]: {"answer": "yes"} for c in item.indicator.check_points or ()}
        actions.verify_item(session, item.id, office, item.version, checks=checks)
        actions.score_item(
            session,
            item.id,
            office,
            item.version,
            scores={"1.1": 4, "1.2": 5},
            deductions={"1.1": "缺一份"},
        )
        set_password(session, member, LONG + "!", actor=member)
        issue_token(session, member)
        session.commit()
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output

    app_engine = create_engine(role_urls["app"])
    owner_engine = create_engine(role_urls["owner"])
    app_role = make_url(role_urls["app"]).username
    owner_role = make_url(role_urls["owner"]).username
    try:
        with app_engine.connect() as conn:
            flags = conn.execute(
                text("SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN (:a, :o)"),
                {"a": app_role, "o": owner_role},
            ).all()
            assert sorted(flags) == sorted([(app_role, False), (owner_role, False)])
            table_owner = conn.scalar(
                text(
                    "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'audit_events'"
                )
            )
            assert table_owner == owner_role  # moved from the superuser that migrated first
            before = conn.execute(text("SELECT seq, hash FROM audit_events ORDER BY seq")).all()
            assert len(before) > 10
        refusals = {
            "update": "UPDATE audit_events SET action = 'x' WHERE seq = 1",
            "delete": "DELETE FROM audit_events WHERE seq = 1",
            "truncate": "TRUNCATE audit_events",
            "disable trigger": "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "replication role": "SET session_replication_role = replica",
            "replication role (local)": "SET LOCAL session_replication_role = replica",
            "drop trigger": "DROP TRIGGER audit_events_no_update_delete ON audit_events",
            "drop table": "DROP TABLE audit_events",
            "new table": "CREATE TABLE mine (id int)",
        }
        for name, statement in refusals.items():
            message = _refused(app_engine, statement)
            assert "permission denied" in message or "must be owner" in message, (name, message)
        with app_engine.connect() as conn:
            after = conn.execute(text("SELECT seq, hash FROM audit_events ORDER BY seq")).all()
        assert after == before
        verify = runner.invoke(args=["audit", "verify"])
        assert verify.exit_code == 0, verify.output

        # A table a later migration adds (as the owner) is usable by the app role at once.
        with owner_engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE later_table (id serial PRIMARY KEY, v text)")
        with app_engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO later_table (v) VALUES ('ok')")
            assert conn.scalar(text("SELECT count(*) FROM later_table")) == 1
        assert "permission denied" in _refused(app_engine, "TRUNCATE later_table")
    finally:
        app_engine.dispose()
        owner_engine.dispose()
        app.extensions["engine"].dispose()


def test_init_warns_when_the_app_connects_as_superuser(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    app = _app({"app": url, "owner": "", "admin": ""}, tmp_path)
    result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "警告：DATABASE_URL 的角色是超级用户" in result.output
    refused = app.test_cli_runner().invoke(args=["init", "--create-roles"])
    assert refused.exit_code != 0 and "MIGRATION_DATABASE_URL" in refused.output
    app.extensions["engine"].dispose()


def test_backup_restores_into_a_new_database_of_the_owner_with_the_app_role_limited(
    role_urls: dict[str, str], tmp_path: Path, scheme_2018: Scheme
) -> None:
    """The production shape (docs/operations.md): `backup create` reads as the owner; a restore
    into a new database the owner owns gives the app role its rights again and no more."""
    app = _app(role_urls, tmp_path)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init", "--create-roles"]).exit_code == 0
    with make_sessionmaker(app.extensions["engine"])() as session:
        assessment = install_scheme(session, scheme_2018)
        dep = assessment.departments[0]
        member = create_user(session, "member", ["department"], department=dep, password=LONG)
        item = session.scalars(select(Item).where(Item.department_id == dep.id)).first()
        assert item is not None
        add_evidence(session, LocalStore(tmp_path / "ev"), item, member)
        actions.submit_item(session, item.id, member, item.version)
        session.commit()
    out = tmp_path / "backup"
    created = runner.invoke(args=["backup", "create", str(out)])
    assert created.exit_code == 0, created.output
    app.extensions["engine"].dispose()

    admin = make_url(role_urls["admin"])
    name = f"{admin.database}_restored"
    owner_role = make_url(role_urls["owner"]).username
    server = create_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{owner_role}"')  # as documented
    urls = {role: make_url(url).set(database=name).render_as_string(hide_password=False)
            for role, url in role_urls.items()}  # fmt: skip
    restored = create_app(
        {**app.config, "DATABASE_URL": urls["app"], "MIGRATION_DATABASE_URL": urls["owner"],
         "DATABASE_ADMIN_URL": urls["admin"], "INSTANCE_DIR": str(tmp_path / "new"),
         "STORAGE": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "ev2")}}
    )  # fmt: skip
    app_engine = create_engine(urls["app"])
    try:
        result = restored.test_cli_runner().invoke(args=["backup", "restore", str(out)])
        assert result.exit_code == 0, result.output
        with app_engine.connect() as conn:
            owner = conn.scalar(
                text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'items'")
            )
            assert owner == owner_role  # not the superuser, not the app
        # The app role works on the restored data, through the engine …
        with make_sessionmaker(restored.extensions["engine"])() as session:
            reviewer = create_user(session, "reviewer", ["reviewer"])
            again = session.get_one(Item, item.id)
            actions.review_item(session, again.id, reviewer, again.version)
            session.commit()
        # … and still cannot rewrite the trail.
        for statement in ("DELETE FROM audit_events WHERE seq = 1", "TRUNCATE audit_events"):
            assert "permission denied" in _refused(app_engine, statement)
        verify = restored.test_cli_runner().invoke(args=["audit", "verify"])
        assert verify.exit_code == 0, verify.output
    finally:
        app_engine.dispose()
        restored.extensions["engine"].dispose()
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()


def test_restore_on_a_new_server_creates_the_roles_without_rows_first(
    role_urls: dict[str, str], tmp_path: Path, scheme_2018: Scheme
) -> None:
    """Disaster recovery: a new server has the database (compose's POSTGRES_DB, owned by the
    superuser) but neither role. `init --create-roles` wrote the schemes and the admin, which
    the restore then refused (not empty), and nothing else created the roles: the documented
    restore could not be followed. `init --create-roles --roles-only` makes the roles and gives
    them the database, with nothing in it; the restore then goes through as on the old server."""
    app = _app(role_urls, tmp_path)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init", "--create-roles"]).exit_code == 0
    with make_sessionmaker(app.extensions["engine"])() as session:
        install_scheme(session, scheme_2018)
        session.commit()
    out = tmp_path / "backup"
    assert runner.invoke(args=["backup", "create", str(out)]).exit_code == 0
    app.extensions["engine"].dispose()

    admin = make_url(role_urls["admin"])
    name = f"{admin.database}_new_server"
    urls = {
        "admin": admin.set(database=name).render_as_string(hide_password=False),
        **{
            role: make_url(role_urls[role])
            .set(database=name, username=f"{name}_{role}")
            .render_as_string(hide_password=False)
            for role in ("owner", "app")
        },
    }
    server = create_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')  # the superuser's, as compose makes it
    new = _app(urls, tmp_path / "new")
    try:
        roles_only = new.test_cli_runner().invoke(args=["init", "--create-roles", "--roles-only"])
        assert roles_only.exit_code == 0, roles_only.output
        assert "数据库仍是空的" in roles_only.output
        in_new = create_engine(urls["admin"])
        with in_new.connect() as conn:
            tables = conn.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
            owner = conn.scalar(
                text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :n"),
                {"n": name},
            )
        in_new.dispose()
        assert (tables, owner) == (0, f"{name}_owner")  # the roles, and nothing in it
        restored = new.test_cli_runner().invoke(args=["backup", "restore", str(out)])
        assert restored.exit_code == 0, restored.output
        assert "恢复已记入审计日志" in restored.output
        verify = new.test_cli_runner().invoke(args=["audit", "verify"])
        assert verify.exit_code == 0 and "260 个事项" in verify.output, verify.output
    finally:
        new.extensions["engine"].dispose()
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in ("app", "owner"):
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}_{role}"')
        server.dispose()
