"""The command line: init twice, users, token, demo, audit verify and checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text

from web.app import create_app
from workflow.db import make_sessionmaker
from workflow.models import ApiToken, AuditEvent, Item, User
from workflow.users import check_password, user_for_token


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Flask:
    return create_app(
        {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path),
            "STORAGE": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "ev")},
        }
    )


def test_init_is_idempotent_and_prints_password(app: Flask, engine: Engine) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    assert "一次性密码" in first.output
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0 and "一次性密码" not in second.output
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 260
        assert s.scalar(select(func.count()).select_from(User)) == 1
    home = app.test_client().get("/")
    assert home.status_code == 200 and "蛟市职转办〔2018〕6号" in home.get_data(as_text=True)


def test_users_and_token(app: Flask, engine: Engine) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["init"])
    out = runner.invoke(
        args=["users", "create", "zhang", "--role", "department", "--department", "城管局",
              "--password-stdin"],
        input="a-long-password-1\n",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    bad = runner.invoke(args=["users", "create", "li", "--role", "wizard"])
    assert bad.exit_code != 0 and "未知的角色：wizard（可选：department (部门填报员)" in bad.output
    helped = runner.invoke(args=["users", "create", "--help"]).output
    assert all(role in helped for role in ("reviewer (初审员)", "admin (管理员)", "auditor"))
    nodep = runner.invoke(args=["users", "create", "wang", "--role", "department"])
    assert nodep.exit_code != 0 and "必须指定所属部门" in nodep.output
    tok = runner.invoke(args=["users", "token", "zhang"])
    assert tok.exit_code == 0
    with make_sessionmaker(engine)() as s:
        user = user_for_token(s, tok.output.strip())
        assert user is not None and user.username == "zhang"
        assert user.unit is not None and user.unit.name == "城管执法大队"


def test_tokens_are_listed_and_revoked_from_the_command_line(app: Flask, engine: Engine) -> None:
    """`users token` issued tokens that only their owner (through the API) or an admin could
    revoke; a leaked one can now be found and revoked by the operator, audited."""
    runner = app.test_cli_runner()
    runner.invoke(args=["init"])
    runner.invoke(
        args=["users", "create", "zhang", "--role", "reviewer", "--password-stdin"],
        input="a-long-password-1\n",
    )
    leaked = runner.invoke(args=["users", "token", "zhang"]).output.strip()
    kept = runner.invoke(args=["users", "token", "zhang"]).output.strip()
    with make_sessionmaker(engine)() as s:
        ids = s.scalars(select(ApiToken.id).order_by(ApiToken.id)).all()
    listed = runner.invoke(args=["users", "tokens", "zhang"])
    assert listed.exit_code == 0, listed.output
    assert [line.split("\t")[0] for line in listed.output.splitlines()] == [f"#{i}" for i in ids]
    assert listed.output.count("\t有效") == 2 and leaked not in listed.output
    revoked = runner.invoke(args=["users", "revoke-token", str(ids[0])])
    assert revoked.exit_code == 0, revoked.output
    assert f"已吊销令牌 #{ids[0]}（用户 zhang，cli）" in revoked.output
    again = runner.invoke(args=["users", "revoke-token", str(ids[0])])
    assert again.exit_code == 0 and "吊销，未再改动" in again.output
    with make_sessionmaker(engine)() as s:
        assert user_for_token(s, leaked) is None
        assert user_for_token(s, kept) is not None
        events = s.execute(
            select(AuditEvent.actor, AuditEvent.target_id).where(
                AuditEvent.action == "token_revoked"
            )
        ).all()
        assert events == [("cli", str(ids[0]))]  # once, by the command line
    after = runner.invoke(args=["users", "tokens", "zhang"]).output
    assert "已吊销（" in after and after.count("\t有效") == 1
    missing = runner.invoke(args=["users", "revoke-token", "99999"])
    assert missing.exit_code == 1 and "令牌不存在：#99999" in missing.output
    nobody = runner.invoke(args=["users", "tokens", "nobody"])
    assert nobody.exit_code == 1 and "用户不存在：nobody" in nobody.output
    none = runner.invoke(args=["users", "tokens", "admin"])
    assert none.exit_code == 0 and "用户 admin 没有 API 令牌" in none.output
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output  # the revocation replays


def test_every_token_of_a_user_is_revoked_at_once(app: Flask, engine: Engine) -> None:
    """`revoke-token --all NAME`: each of the user's live tokens revoked and audited as one
    revoked alone, counted and listed; another user's kept; an id with --all refused."""
    runner = app.test_cli_runner()
    runner.invoke(args=["init"])
    for name in ("zhang", "li"):
        runner.invoke(
            args=["users", "create", name, "--role", "reviewer", "--password-stdin"],
            input="a-long-password-1\n",
        )
    tokens = [runner.invoke(args=["users", "token", "zhang"]).output.strip() for _ in range(3)]
    other = runner.invoke(args=["users", "token", "li"]).output.strip()
    with make_sessionmaker(engine)() as s:
        ids = s.scalars(select(ApiToken.id).order_by(ApiToken.id)).all()[:3]
    runner.invoke(args=["users", "revoke-token", str(ids[0])])  # revoked before: left alone
    both = runner.invoke(args=["users", "revoke-token", str(ids[1]), "--all", "zhang"])
    assert both.exit_code == 1 and "不能同时使用" in both.output
    neither = runner.invoke(args=["users", "revoke-token"])
    assert neither.exit_code == 1 and "--all 用户名" in neither.output
    with make_sessionmaker(engine)() as s:
        assert user_for_token(s, tokens[1]) is not None  # the refusals changed nothing
    done = runner.invoke(args=["users", "revoke-token", "--all", "zhang"])
    assert done.exit_code == 0, done.output
    assert f"已吊销用户 zhang 的 2 个 API 令牌：#{ids[1]}（cli）、#{ids[2]}（cli）" in done.output
    again = runner.invoke(args=["users", "revoke-token", "--all", "zhang"])
    assert again.exit_code == 0 and "用户 zhang 没有未吊销的 API 令牌，未作改动" in again.output
    nobody = runner.invoke(args=["users", "revoke-token", "--all", "nobody"])
    assert nobody.exit_code == 1 and "用户不存在：nobody" in nobody.output
    with make_sessionmaker(engine)() as s:
        assert all(user_for_token(s, token) is None for token in tokens)
        assert user_for_token(s, other) is not None
        revoked = s.execute(
            select(AuditEvent.actor, AuditEvent.target_id)
            .where(AuditEvent.action == "token_revoked")
            .order_by(AuditEvent.seq)
        ).all()
        assert revoked == [("cli", str(i)) for i in ids]
    assert "--all NAME" in runner.invoke(args=["users", "revoke-token", "--help"]).output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0  # the revocations replay


def test_reset_password_prints_a_one_time_password(app: Flask, engine: Engine) -> None:
    """An admin who missed the first password gets back in: a new one, to be changed."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init"])
    old = re.findall(r"一次性密码：([\w-]+)", first.output)[0]
    with make_sessionmaker(engine)() as s:
        admin = s.execute(select(User).where(User.username == "admin")).scalar_one()
        assert check_password(admin, old)  # what init printed is the password
    out = runner.invoke(args=["users", "reset-password", "admin"])
    assert out.exit_code == 0, out.output
    new = re.findall(r"一次性密码：([\w-]+)", out.output)[0]
    assert new != old and len(new) >= 12
    with make_sessionmaker(engine)() as s:
        admin = s.execute(select(User).where(User.username == "admin")).scalar_one()
        assert check_password(admin, new) and not check_password(admin, old)
        assert admin.must_change_password
        events = s.execute(select(AuditEvent.action).where(AuditEvent.target_type == "user"))
        assert "password_reset" in list(events.scalars())
    missing = runner.invoke(args=["users", "reset-password", "nobody"])
    assert missing.exit_code != 0 and "用户不存在：nobody" in missing.output


@pytest.mark.slow  # the whole demo data
def test_demo_then_verify_then_tamper(app: Flask, engine: Engine, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    demo = runner.invoke(args=["demo", "--password", "demo-password-x"])
    assert demo.exit_code == 0, demo.output
    with make_sessionmaker(engine)() as s:
        states = dict(s.execute(select(Item.state, func.count()).group_by(Item.state)).all())
    assert set(states) == {
        "draft", "submitted", "reviewed", "verified", "scored", "returned", "appealed"
    }  # fmt: skip
    cp = tmp_path / "cp.json"
    assert runner.invoke(args=["audit", "checkpoint", "--out", str(cp)]).exit_code == 0
    ok = runner.invoke(args=["audit", "verify", "--checkpoint", str(cp)])
    assert ok.exit_code == 0, ok.output
    assert "数据核对一致：260 个事项" in ok.output  # every demo change replays exactly
    head = json.loads(cp.read_text())["seq"]
    with engine.begin() as conn:  # the finding: a score edited in the table (10 → 3)
        score_id, item_id, points = conn.execute(
            text("SELECT id, item_id, points FROM scores WHERE points > 3 ORDER BY id LIMIT 1")
        ).one()
        conn.execute(text("UPDATE scores SET points = 3 WHERE id = :i"), {"i": score_id})
    edited = runner.invoke(args=["audit", "verify"])
    assert edited.exit_code == 1, edited.output
    assert "审计链完整" in edited.output and "数据核对发现 1 处不一致" in edited.output
    assert f"事项 #{item_id} score[" in edited.output
    assert f"现值 3.00，按审计记录应为 {points:.2f}" in edited.output
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE scores SET points = :p WHERE id = :i"), {"p": points, "i": score_id}
        )
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text("UPDATE audit_events SET comment = '改' WHERE seq = :s"), {"s": head // 2}
        )
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert f"序号 {head // 2}" in bad.output


@pytest.mark.slow  # the whole demo data
def test_demo_complete_scores_and_publishes(app: Flask, engine: Engine) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    demo = runner.invoke(args=["demo", "--complete", "--password", "demo-password-x"])
    assert demo.exit_code == 0, demo.output
    with make_sessionmaker(engine)() as s:
        states = dict(s.execute(select(Item.state, func.count()).group_by(Item.state)).all())
        assert states == {"scored": 260}
        from workflow.assessments import assessment_status
        from workflow.models import Assessment

        assert assessment_status(s.execute(select(Assessment)).scalar_one()) == "published"
    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    assert "数据核对一致：260 个事项" in verify.output  # scores, appeals window, publication


def test_init_stores_the_shipped_schemes_and_the_schemes_commands(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    from workflow.models import Assessment, StoredScheme
    from workflow.scheme import SCHEMES_DIR

    runner = app.test_cli_runner()
    out = runner.invoke(args=["init"])
    assert out.exit_code == 0, out.output
    assert "方案库：jiaohe-2019-shili 第 1 版（已新建）" in out.output
    with make_sessionmaker(engine)() as s:
        # The 示例 scheme is stored, never installed as an assessment at init.
        assert s.execute(select(Assessment.code)).scalars().all() == ["jiaohe-2018"]
        assert s.scalar(select(func.count()).select_from(StoredScheme)) == 2
    listed = runner.invoke(args=["schemes", "list"])
    assert "jiaohe-2018\t第 1 版\t2018" in listed.output and "已冻结" in listed.output
    assert "示例" in listed.output
    diff = runner.invoke(args=["schemes", "diff", "jiaohe-2019-shili"])
    assert diff.exit_code == 0, diff.output
    assert "删除\tpoint\t1.2\t指定专人负责\t5 → —" in diff.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (SCHEMES_DIR / "jiaohe-2018.yaml")
        .read_text("utf-8")
        .replace("code: jiaohe-2018", "code: bad-2018")
        .replace("total_points: 100", "total_points: 90"),
        encoding="utf-8",
    )
    refused = runner.invoke(args=["schemes", "import", str(bad)])
    assert refused.exit_code != 0
    assert "total_points: 各类别之和 100 ≠ 总分 90" in refused.output
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(StoredScheme)) == 2
    edited = tmp_path / "ok.yaml"
    edited.write_text(bad.read_text("utf-8").replace("total_points: 90", "total_points: 100"))
    ok = runner.invoke(args=["schemes", "import", str(edited)])
    assert ok.exit_code == 0 and "bad-2018 第 1 版" in ok.output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "无法读取检查点文件 {f}（文件或目录不存在）"),
        ("folder", "无法读取检查点文件 {f}（这是一个目录，不是文件）"),
        (b"\xff\xfe{", "检查点文件 {f} 不是 UTF-8 文本："),
        (b'{"seq": 12,\n "hash": }', "检查点文件 {f} 不是有效的 JSON（第 2 行第 10 列有误）："),
        (b'{"format": "fangguanfu-backup"}', "检查点文件 {f} 中没有检查点（缺少 seq 或 hash）："),
        (b"[1, 2]", "检查点文件 {f} 中没有检查点（缺少 seq 或 hash）："),
        (
            '{"seq": "十二", "hash": "ab"}'.encode(),
            '检查点文件 {f} 中的 seq 不是事件序号（"十二"）：',
        ),
        (b'{"seq": 12, "hash": null}', "检查点文件 {f} 中的 hash 不是哈希值（null）："),
    ],
    ids=["missing", "folder", "binary", "json", "no-checkpoint", "list", "seq", "hash"],
)
def test_a_bad_checkpoint_file_is_named_in_chinese(
    app: Flask, tmp_path: Path, content: bytes | str | None, said: str
) -> None:
    """It said `检查点文件无效：[Errno 2] No such file or directory: …` or the JSON parser's
    `Expecting value: line 2 column 10 (char 20)`: now the file and what is wrong with it."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    path = tmp_path / "cp.json"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    result = runner.invoke(args=["audit", "verify", "--checkpoint", str(path)])
    assert result.exit_code == 1, result.output
    assert said.format(f=path) in result.output, result.output
    english = ("Errno", "No such", "directory", "Expecting", "line", "column", "codec", "'seq'")
    assert not any(word in result.output for word in english), result.output


def test_contract_commands_refuse_in_words_not_tracebacks(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    """A year without an assessment is named; an output place that cannot be written is an
    error message with exit 1, never a Python traceback."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    for args, said in (
        (["notices", "1999", "--out", str(tmp_path / "n")], "没有 1999 年度的考核"),
        (["archive", "1999", "城管局", "--out", str(tmp_path / "a.zip")], "没有 1999 年度的考核"),
        (["audit", "checkpoint", "--out", str(blocked / "cp.json")], "无法写入检查点文件"),
        (["schemes", "diff", "无此方案"], "考核方案不存在"),
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert said in result.output and "Traceback" not in result.output, result.output
        assert not isinstance(result.exception, OSError | LookupError), result.exception
    # `notices YEAR --out DIR` into a place that is no folder: refused before anything is issued.
    out = runner.invoke(args=["notices", "2018", "--out", str(blocked / "notices")])
    assert out.exit_code == 1 and "无法创建输出目录" in out.output, out.output
    assert "（路径中有一项不是目录）" in out.output and "Not a directory" not in out.output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("{not json", "manifest.json 无效：不是有效的 JSON（第 1 行第 2 列）"),
        ("", "manifest.json 无效：不是有效的 JSON（第 1 行第 1 列）"),
        (b"\xff\xfe", "manifest.json 无效：不是 UTF-8 文本"),
        ("[]", "manifest.json 无效：内容应为 JSON 对象"),
        ('{"format": "fangguanfu-backup", "format_version": 1}', "无效：缺少 created_at"),
        (
            '{"format": "fangguanfu-backup", "format_version": 1, "created_at": "x", '
            '"schema_revision": "r", "database": {"kind": "sqlite", "file": "database.sqlite3", '
            '"sha256": "a", "size": "12"}}',
            "manifest.json 无效：database.size 的值类型不对",
        ),
    ],
    ids=["json", "empty", "binary", "list", "missing", "type"],
)
def test_a_bad_backup_manifest_is_named_in_chinese(
    app: Flask, tmp_path: Path, content: str | bytes, said: str
) -> None:
    """`backup verify` and `backup restore` said the JSON parser's English (`Expecting
    property name enclosed in double quotes: line 1 column 2 (char 1)`) or a Python error
    (`'list' object has no attribute 'get'`): now what is wrong, in words."""
    runner = app.test_cli_runner()
    folder = tmp_path / "backup"
    folder.mkdir()
    manifest = folder / "manifest.json"
    manifest.write_bytes(content) if isinstance(content, bytes) else manifest.write_text(content)
    for command in ("verify", "restore"):
        result = runner.invoke(args=["backup", command, str(folder)])
        assert result.exit_code == 1 and said in result.output, result.output
        english = ("Expecting", "line", "column", "object", "attribute", "codec", "invalid")
        assert not any(word in result.output for word in english), result.output


def test_a_backup_folder_that_cannot_be_made_is_named_in_chinese(
    app: Flask, tmp_path: Path
) -> None:
    """It said the system's English (`Not a directory`)."""
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    result = app.test_cli_runner().invoke(args=["backup", "create", str(blocked / "b")])
    assert result.exit_code == 1, result.output
    assert f"无法创建目标目录 {blocked / 'b'}：路径中有一项不是目录" in result.output
    assert "Not a directory" not in result.output


def test_demo_refuses_an_installation_in_use(app: Flask, engine: Engine) -> None:
    """`demo` works through the real operations: on a system already in use it wrote invented
    submissions, scores and a publication into the official year's permanent audit trail and
    made accounts with the README's password. It now refuses, naming what it found, and
    changes nothing."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init"]).exit_code == 0
    zhang = runner.invoke(
        args=["users", "create", "zhang", "--role", "department", "--department", "城管局",
              "--password-stdin"],
        input="a-long-password-1\n",
    )  # fmt: skip
    assert zhang.exit_code == 0, zhang.output
    with make_sessionmaker(engine)() as s:
        events = s.scalar(select(func.count()).select_from(AuditEvent))
    demo = runner.invoke(args=["demo", "--complete"])
    assert demo.exit_code == 1, demo.output
    assert "本系统已有数据（非管理员用户 1 个、已提交的事项 0 个" in demo.output
    assert "只能在新安装的系统上生成" in demo.output
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == events
        assert s.execute(select(User).where(User.username == "reviewer1")).first() is None
