"""Two PostgreSQL roles: an owner that migrates, and the app's login role that only uses data.

The owner role owns the schema, every table and the audit trigger; migrations run as it. The
app role is neither owner nor superuser: it cannot disable a trigger (only an owner can), set
``session_replication_role`` (superuser only), truncate anything, or change or delete a row of
``audit_events`` (it holds SELECT and INSERT there). Role names and passwords come from the two
URLs (``MIGRATION_DATABASE_URL`` and ``DATABASE_URL``); creating them needs a superuser URL.

Every statement is idempotent: ``init --create-roles`` may run on every deployment.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, Engine, make_url, text

from workflow.db import make_engine

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# What the app role may not do on the trail even though it may elsewhere.
AUDIT_TABLE = "audit_events"
READ_ONLY_TABLES = ("alembic_version",)


class RoleSetupError(Exception):
    """The URLs or the database do not allow the two-role set-up; the message says why."""


def _role_of(url: str, what: str) -> tuple[str, str]:
    parsed = make_url(url)
    name, password = parsed.username or "", parsed.password or ""
    if not ROLE_NAME.match(name):
        raise RoleSetupError(f"{what} 的用户名无效（小写字母、数字、下划线）：{name!r}")
    if not password:
        raise RoleSetupError(f"{what} 缺少密码")
    return name, str(password)


def _run(conn: Connection, template: str, *args: str) -> None:
    """Run a statement built by the server's format(): %I quotes names, %L quotes literals."""
    statement = conn.scalar(
        text("SELECT format(CAST(:t AS text), VARIADIC CAST(:args AS text[]))"),
        {"t": template, "args": list(args)},
    )
    # The driver reads % as a placeholder even without parameters: double it.
    conn.exec_driver_sql(str(statement).replace("%", "%%"))


def _ensure_login_role(conn: Connection, name: str, password: str) -> None:
    exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
    verb = "ALTER" if exists else "CREATE"
    _run(
        conn,
        f"{verb} ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        "NOBYPASSRLS PASSWORD %L",
        name,
        password,
    )


def create_roles(admin_url: str, owner_url: str, app_url: str) -> list[str]:
    """Create (or update) both roles, hand the database to the owner; return what was done.

    Objects made earlier by another role (a deployment that ran as a superuser) are given to
    the owner role, so later migrations can alter them.
    """
    owner, owner_password = _role_of(owner_url, "MIGRATION_DATABASE_URL")
    app, app_password = _role_of(app_url, "DATABASE_URL")
    database = make_url(owner_url).database
    if owner == app:
        raise RoleSetupError("应用角色与所有者角色必须不同")
    if database != make_url(app_url).database:
        raise RoleSetupError("DATABASE_URL 与 MIGRATION_DATABASE_URL 必须指向同一个数据库")
    admin = make_url(admin_url)
    if not admin.drivername.startswith("postgresql"):
        raise RoleSetupError("--create-roles 仅适用于 PostgreSQL")
    if admin.username in (owner, app):
        raise RoleSetupError("管理连接必须使用另一个（超级用户）角色")
    engine = make_engine(admin.set(database=database).render_as_string(hide_password=False))
    done = []
    try:
        with engine.begin() as conn:
            if not conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
                raise RoleSetupError("创建角色需要超级用户连接（DATABASE_ADMIN_URL）")
            for name, password in ((owner, owner_password), (app, app_password)):
                _ensure_login_role(conn, name, password)
                done.append(f"角色 {name}")
            _run(conn, "ALTER DATABASE %I OWNER TO %I", str(database), owner)
            _run(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", str(database))
            _run(conn, "GRANT CONNECT ON DATABASE %I TO %I", str(database), app)
            conn.exec_driver_sql("ALTER SCHEMA public OWNER TO " + _quoted(conn, owner))
            conn.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            moved = _give_objects_to(conn, owner)
            if moved:
                done.append(f"{moved} 个对象移交给 {owner}")
    finally:
        engine.dispose()
    return done


def _quoted(conn: Connection, name: str) -> str:
    return str(conn.scalar(text("SELECT quote_ident(:n)"), {"n": name}))


def _give_objects_to(conn: Connection, owner: str) -> int:
    """Make `owner` the owner of every table, view, sequence and function in public."""
    moved = 0
    # Tables first: their owned sequences follow them (an identity sequence cannot move alone).
    for kinds in (("r", "p", "v", "m"), ("S",)):
        names = conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c "
                "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = ANY(:k) "
                "AND pg_get_userbyid(c.relowner) <> :o"
            ),
            {"k": list(kinds), "o": owner},
        ).all()
        for name in names:
            _run(conn, "ALTER TABLE public.%I OWNER TO %I", name, owner)
            moved += 1
    functions = conn.scalars(
        text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> :o"
        ),
        {"o": owner},
    ).all()
    for signature in functions:
        conn.exec_driver_sql(f"ALTER FUNCTION {signature} OWNER TO {_quoted(conn, owner)}")
        moved += 1
    return moved


def grant_app_privileges(owner_engine: Engine, app: str) -> None:
    """As the owner, give the app role what it needs and nothing more; idempotent.

    Data rights on every table (no TRUNCATE, no REFERENCES, no TRIGGER), only SELECT and INSERT
    on the audit trail, read-only on the migration version, sequences for ids. Default
    privileges give tables that later migrations create the same data rights; running this
    again (every `init`) re-applies the trail's restriction.
    """
    with owner_engine.begin() as conn:
        role = _quoted(conn, app)
        owner = _quoted(conn, str(conn.scalar(text("SELECT current_user"))))
        for statement in (
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {role}",
            f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {AUDIT_TABLE} FROM {role}",
            *(
                f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {t} FROM {role}"
                for t in READ_ONLY_TABLES
            ),
        ):
            conn.exec_driver_sql(statement)


def app_role_warnings(engine: Engine) -> list[str]:
    """Say why the app's own connection could switch the audit trigger off, if it could."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        superuser = conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        owns = conn.scalar(
            text(
                "SELECT pg_get_userbyid(relowner) = current_user FROM pg_class "
                "WHERE relname = :t AND relnamespace = 'public'::regnamespace"
            ),
            {"t": AUDIT_TABLE},
        )
    warnings = []
    if superuser:
        warnings.append("DATABASE_URL 的角色是超级用户")
    if owns:
        warnings.append("DATABASE_URL 的角色拥有 audit_events")
    return warnings
