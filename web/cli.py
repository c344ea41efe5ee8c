"""`flask --app wsgi …` commands: set-up, users, demo, audit, storage maintenance, archives."""

from __future__ import annotations

import json
import os
import sys
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.config import store_from_settings
from storage.errors import StorageError
from workflow import audit, maintenance, reconcile, roles
from workflow.archive import write_department_archive
from workflow.db import make_engine, migrate, unit_of_work
from workflow.demo import run_demo
from workflow.errors import DomainError
from workflow.models import Assessment, Department, User
from workflow.scheme import load_scheme, shipped_schemes
from workflow.setup import find_department, install_scheme
from workflow.states import Role
from workflow.users import create_user, generate_password, get_user, issue_token


def cli_unit() -> AbstractContextManager[Session]:
    """Return the command's unit of work: committed once at the end, rolled back on error."""
    return unit_of_work(current_app.extensions["sessionmaker"])


def app_store() -> ObjectStore:
    """Return the configured object store."""
    return store_from_settings(current_app.config["STORAGE"], current_app.config["INSTANCE_DIR"])


def latest_assessment(session: Session, year: int | None = None) -> Assessment:
    """Return the assessment of a year, or the newest one."""
    stmt = select(Assessment).order_by(Assessment.year.desc(), Assessment.id.desc())
    if year is not None:
        stmt = stmt.where(Assessment.year == year)
    found = session.execute(stmt.limit(1)).scalar_one_or_none()
    if found is None:
        raise click.ClickException("没有考核方案：请先运行 flask --app wsgi init")
    return found


def migrate_database(create_roles: bool) -> None:
    """Migrate as the owner role (when two are configured) and grant the app role its rights."""
    config = current_app.config
    app_engine = current_app.extensions["engine"]
    owner_url = config.get("MIGRATION_DATABASE_URL") or ""
    app_url = app_engine.url.render_as_string(hide_password=False)
    if create_roles:
        if not owner_url or not config.get("DATABASE_ADMIN_URL"):
            raise click.ClickException(
                "--create-roles 需要 MIGRATION_DATABASE_URL（所有者）"
                "和 DATABASE_ADMIN_URL（超级用户）"
            )
        try:
            for line in roles.create_roles(config["DATABASE_ADMIN_URL"], owner_url, app_url):
                click.echo(f"已就绪：{line}")
        except roles.RoleSetupError as exc:
            raise click.ClickException(str(exc)) from exc
    if not owner_url or make_url(owner_url).username == app_engine.url.username:
        migrate(app_engine)
    else:
        owner_engine = make_engine(owner_url)
        try:
            migrate(owner_engine)
            roles.grant_app_privileges(owner_engine, str(app_engine.url.username))
        finally:
            owner_engine.dispose()
        user = app_engine.url.username
        click.echo(f"数据库权限：{user} 只能读写数据，审计日志只可读取和追加")
    for warning in roles.app_role_warnings(app_engine):
        click.echo(
            f"警告：{warning}，审计触发器可被关闭；请用 init --create-roles 分开两个角色", err=True
        )


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    from web.cli_routine import register_routine_cli

    register_routine_cli(app)

    @app.cli.command("init")
    @click.option(
        "--create-roles",
        is_flag=True,
        help="Create the owner and app roles of MIGRATION_DATABASE_URL and DATABASE_URL "
        "through the superuser DATABASE_ADMIN_URL (PostgreSQL).",
    )
    def init_cmd(create_roles: bool) -> None:
        """Create or migrate the schema, load the shipped schemes, create the first admin."""
        migrate_database(create_roles)
        with cli_unit() as session:
            for path in shipped_schemes():
                a = install_scheme(session, load_scheme(path))
                click.echo(f"考核方案：{a.year} {a.document_no}（{path.name}）")
            has_admin = any(u.has_role(Role.ADMIN) for u in session.execute(select(User)).scalars())
            if not has_admin:
                password = generate_password()
                create_user(
                    session,
                    "admin",
                    ["admin"],
                    password=password,
                    display_name="系统管理员",
                    must_change_password=True,
                )
                click.echo(f"已创建管理员 admin，一次性密码：{password}（首次登录后请修改）")
            else:
                click.echo("管理员已存在。")

    users = AppGroup("users", help="Manage users.")
    app.cli.add_command(users)

    @users.command("create")
    @click.argument("name")
    @click.option("--role", "roles", multiple=True, required=True, help="Repeat for several.")
    @click.option("--department", default=None, help="Department name or alias.")
    @click.option("--year", type=int, default=None, help="Assessment year of the department.")
    @click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
    def users_create(
        name: str, roles: tuple[str, ...], department: str | None, year: int | None,
        password_stdin: bool,
    ) -> None:  # fmt: skip
        """Create a user with roles (and a department for department users)."""
        password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
        try:
            with cli_unit() as session:
                dep = None
                if department:
                    assessment = latest_assessment(session, year)
                    dep = find_department(session, assessment.id, department)
                    if dep is None:
                        raise click.ClickException(f"找不到部门：{department}")
                create_user(
                    session, name, roles, department=dep, password=password,
                    must_change_password=not password_stdin,
                )  # fmt: skip
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"已创建用户 {name}")
        if not password_stdin:
            click.echo(f"一次性密码：{password}")

    @users.command("token")
    @click.argument("name")
    def users_token(name: str) -> None:
        """Print a new API token for the user."""
        with cli_unit() as session:
            user = get_user(session, name)
            if user is None:
                raise click.ClickException(f"用户不存在：{name}")
            try:
                token, _row = issue_token(
                    session, user, name="cli", days=current_app.config["TOKEN_DAYS"]
                )
            except DomainError as exc:
                raise click.ClickException(exc.message) from exc
        click.echo(token)

    @app.cli.command("demo")
    @click.option("--password", default="demo-password-2018", show_default=True)
    @click.option(
        "--complete", is_flag=True, help="Score every item and publish (for notices) instead."
    )
    def demo_cmd(password: str, complete: bool) -> None:
        """Create a demonstration data set: users for every role, items in every state."""
        try:
            with cli_unit() as session:
                assessment = latest_assessment(session)
                admin = get_user(session, "admin")
                result = run_demo(
                    session,
                    app_store(),
                    assessment,
                    password=password,
                    admin=admin,
                    max_size=current_app.config["MAX_UPLOAD_BYTES"],
                    complete=complete,
                )
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"演示用户（密码 {password}）：{', '.join(result.users)}")
        for state, count in sorted(result.states.items()):
            click.echo(f"  {state}: {count}")

    notices_group = NoticesGroup(
        "notices", help="Word score notices: `notices YEAR --out DIR`, `notices base FILE`."
    )
    app.cli.add_command(notices_group)

    @notices_group.command("issue")
    @click.argument("year", type=int)
    @click.option("--out", "out", required=True, type=click.Path(file_okay=False))
    @click.option("--force", is_flag=True, help="Issue new versions even when nothing changed.")
    @click.option(
        "--preliminary", is_flag=True, help="Before publication: 初步结果 without a rank."
    )
    def notices_issue(year: int, out: str, force: bool, preliminary: bool) -> None:
        """Write every complete department's notice and the summary; exit 1 if any skipped."""
        from tqdm import tqdm

        from workflow import notices

        store = app_store()
        target = Path(out)
        target.mkdir(parents=True, exist_ok=True)
        skipped: list[str] = []
        written = 0
        base_url = str(app.config.get("PUBLIC_BASE_URL") or "")
        if not base_url:
            click.echo("未设置 PUBLIC_BASE_URL：通知书只印验证码，不印二维码", err=True)
        with cli_unit() as session:
            assessment = latest_assessment(session, year)
            if assessment.year != year:
                raise click.ClickException(f"没有 {year} 年度的考核方案")
            if not notices.result_document_no(assessment):
                raise click.ClickException(
                    "尚未设置考核结果通知书的发文字号（管理员在“考核设置”中填写）"
                )
            if not preliminary and not notices.publication_started(assessment):
                raise click.ClickException(
                    "考核结果尚未公示，不能印发载明排名的通知书；可加 --preliminary 印发初步结果"
                )
            assessment_id = assessment.id
            departments = [(dep.id, dep.name) for dep in assessment.departments]
        for dep_id, dep_name in tqdm(
            departments, desc="考核结果通知书", unit="份", file=sys.stderr
        ):
            try:  # one unit of work per department: a skipped one leaves no trace
                with cli_unit() as session:
                    row = notices.issue_notice(
                        session,
                        store,
                        session.get_one(Assessment, assessment_id),
                        session.get_one(Department, dep_id),
                        None,
                        preliminary=preliminary,
                        only_if_changed=not force,
                        verify_base_url=base_url,
                    ).notice
            except DomainError as exc:
                if exc.code == "not_all_scored" and isinstance(exc.detail, list):
                    codes = "、".join(str(d["indicator"]) for d in exc.detail)
                    message = f"{len(exc.detail)} 个考核指标未完成评分（指标 {codes}）"
                else:
                    message = exc.message
                skipped.append(f"{dep_name}：{message}")
                continue
            (target / row.filename).write_bytes(notices.read_object(store, row.storage_key))
            written += 1
        with cli_unit() as session:
            row = notices.issue_summary(
                session, store, session.get_one(Assessment, assessment_id), None,
                only_if_changed=not force, verify_base_url=base_url,
            ).notice  # fmt: skip
        (target / row.filename).write_bytes(notices.read_object(store, row.storage_key))
        click.echo(f"已写出 {written} 份考核结果通知书和{row.filename}到 {target}")
        if skipped:
            click.echo(f"跳过 {len(skipped)} 个评分未完成的部门：", err=True)
            for line in skipped:
                click.echo(f"  {line}", err=True)
            sys.exit(1)

    @notices_group.command("base")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--year", type=int, default=None, help="Assessment year (default: newest).")
    def notices_base(file: str, year: int | None) -> None:
        """Set the letterhead .docx that every later notice is rendered on."""
        from workflow import notices

        path = Path(file)
        try:
            with cli_unit() as session, path.open("rb") as stream:
                assessment = latest_assessment(session, year)
                base = notices.set_notice_base(
                    session, app_store(), assessment, stream, path.name, None
                )
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"通知书信头已更新：{base.filename}（SHA-256 {base.sha256}）")

    audit_group = AppGroup("audit", help="Verify and checkpoint the audit chain.")
    app.cli.add_command(audit_group)

    @audit_group.command("verify")
    @click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False))
    def audit_verify(checkpoint_file: str | None) -> None:
        """Exit 0 when the chain holds and the tables match it; 1 naming what does not."""
        cp = None
        if checkpoint_file:
            try:
                cp = json.loads(Path(checkpoint_file).read_text(encoding="utf-8"))
                int(cp["seq"]), str(cp["hash"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise click.ClickException(f"检查点文件无效：{exc}") from exc
        with cli_unit() as session:
            check = reconcile.check_audit(session, cp)
        result, tables = check.chain, check.tables
        if result.ok:
            click.echo(
                f"审计链完整：{result.events} 个事件，链头 #{result.head_seq} {result.head_hash}"
            )
        else:
            click.echo(
                f"审计链校验失败：第一个异常事件序号 {result.first_bad_seq}（{result.problem}）",
                err=True,
            )
        if tables.ok:
            click.echo(
                f"数据核对一致：{tables.items} 个事项按 {tables.events} 个事件重放，与现有数据相符"
            )
        else:
            click.echo(f"数据核对发现 {len(tables.differences)} 处不一致：", err=True)
            for line in reconcile.iter_descriptions(tables):
                click.echo(f"  {line}", err=True)
        if not check.ok:
            sys.exit(1)

    @audit_group.command("checkpoint")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
    def audit_checkpoint(out: str) -> None:
        """Write the current chain head to a file, for a later `verify --checkpoint`."""
        with cli_unit() as session:
            cp = audit.checkpoint(session)
        Path(out).write_text(json.dumps(cp, ensure_ascii=False, indent=2), encoding="utf-8")
        click.echo(f"检查点：#{cp['seq']} {cp['hash']} → {out}")

    storage_group = AppGroup("storage", help="Maintain the object store: orphans, integrity.")
    app.cli.add_command(storage_group)

    @storage_group.command("gc")
    @click.option(
        "--grace-hours",
        type=click.FloatRange(min=0),
        default=maintenance.DEFAULT_GRACE.total_seconds() / 3600,
        show_default=True,
        help="Never touch objects younger than this (uploads in flight).",
    )
    @click.option("--delete", is_flag=True, help="Remove the listed objects.")
    def storage_gc(grace_hours: float, delete: bool) -> None:
        """List, then with --delete remove, objects that no row refers to and the temporary
        files of interrupted writes."""
        grace = timedelta(hours=grace_hours)
        try:
            store = app_store()
            with cli_unit() as session:
                if delete:
                    orphans = maintenance.delete_orphans(session, store, grace)
                    leftovers = maintenance.delete_leftovers(store, grace)
                else:
                    orphans = maintenance.find_orphans(session, store, grace)
                    leftovers = maintenance.find_leftovers(store, grace)
        except StorageError as exc:
            raise click.ClickException(f"{exc.message}（{exc}）") from exc
        for info in orphans + leftovers:
            click.echo(f"{info.key}\t{info.size}\t{info.modified_at:%Y-%m-%dT%H:%M:%SZ}")
        verb = "已删除" if delete else "发现"
        hint = "" if delete or not (orphans or leftovers) else "；加 --delete 删除"
        total = sum(info.size for info in orphans)
        click.echo(
            f"{verb} {len(orphans)} 个无引用对象（共 {total} 字节，早于 {grace_hours:g} 小时）"
            + ("" if leftovers else hint)
        )
        if leftovers:  # only the local folder has them, and only after a crash
            total = sum(info.size for info in leftovers)
            click.echo(
                f"{verb} {len(leftovers)} 个中断写入留下的临时文件"
                f"（共 {total} 字节，早于 {grace_hours:g} 小时）{hint}"
            )

    @storage_group.command("verify")
    def storage_verify() -> None:
        """Re-read every referenced object; exit 1 when any is missing or altered."""
        try:
            with cli_unit() as session:
                report = maintenance.verify_objects(session, app_store())
        except StorageError as exc:
            raise click.ClickException(f"{exc.message}（{exc}）") from exc
        for problem in report.problems:
            ids = ",".join(str(i) for i in problem.evidence_ids) or "-"
            others = f"（另见 {', '.join(problem.other_refs)}）" if problem.other_refs else ""
            label = "缺失" if problem.problem == "missing" else "已改动"
            click.echo(f"{label}\t材料 {ids}{others}\t{problem.key}\t{problem.detail}", err=True)
        click.echo(
            f"已校验 {report.checked} 个对象（{report.bytes_read} 字节）："
            f"缺失 {len(report.missing)}，改动 {len(report.altered)}"
        )
        if not report.ok:
            sys.exit(1)

    @app.cli.command("archive")
    @click.argument("year", type=int)
    @click.argument("department")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
    def archive_cmd(year: int, department: str, out: str) -> None:
        """Write one department's evidence, manifest and audit events to a ZIP file."""
        target = Path(out)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with cli_unit() as session:
                assessment = latest_assessment(session, year)
                dep = find_department(session, assessment.id, department)
                if dep is None:
                    raise click.ClickException(f"找不到部门：{department}")
                with open(partial, "wb") as stream:
                    summary = write_department_archive(session, app_store(), dep, stream)
            os.replace(partial, target)
        except (DomainError, StorageError) as exc:
            raise click.ClickException(f"归档失败：{exc.message}") from exc
        except OSError as exc:
            raise click.ClickException(f"归档失败：无法写入 {out}（{exc.strerror}）") from exc
        finally:
            partial.unlink(missing_ok=True)
        click.echo(
            f"{dep.name}：{summary.files} 个文件（{summary.bytes} 字节），"
            f"{summary.removed} 个已删除材料列入清单，{summary.events} 个审计事件 → {out}"
        )


class NoticesGroup(AppGroup):
    """`notices YEAR --out DIR` is short for `notices issue YEAR --out DIR`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Route a leading year (anything not a subcommand or option) to `issue`."""
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)
