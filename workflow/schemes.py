"""The scheme library: schemes stored in the database, versioned, frozen once used, compared.

A scheme comes in as YAML text, as JSON, from the portal's form or from a Word draft
(`workflow/scheme_docx.py`). `check_scheme` validates it with the file loader's own rules
(`workflow/scheme.py`: declared models, sums, unique codes, routine rules), naming every
problem by its place; nothing is stored while any remains. `save_scheme` stores it, audited:

- a new code: version 1 (`scheme_created`);
- the code's latest version is not yet used by an assessment: changed in place
  (`scheme_updated`), or left alone when nothing changed;
- the latest version is frozen (an assessment was made from it, `use_scheme`): version N+1
  (`scheme_versioned`); the frozen version never changes again.

`load_scheme(session, scheme_id)` returns the engine's `Scheme` (the same frozen dataclass a
file gives), ready for `workflow.setup.install_scheme`. `diff_schemes` lists the scoring
points added, removed and re-weighted between two schemes; `previous_scheme` finds what to
compare with (the version before, else the latest scheme of an earlier year).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.audit import record_event
from workflow.db import lock_key, lock_row, serialise
from workflow.errors import Conflict, Forbidden, InvalidValue, NotFound, SchemeError
from workflow.fingerprints import check_seen, fingerprint
from workflow.messages import Np_
from workflow.models import Assessment, StoredScheme, User, utcnow
from workflow.scheme import Scheme, SchemeFile, parse_scheme, shipped_schemes
from workflow.states import Role

#: The largest scheme text accepted (the 2018 scheme is about 9 KB).
MAX_SOURCE_BYTES = 512 * 1024
#: A counted refusal (`Np_`: 1 problem, 3 problems in English).
SCHEME_PROBLEMS = Np_("方案有 %(n)s 处问题，未保存")
#: 示例 (example) schemes carry this in their title and file name; never real rules.
EXAMPLE_MARK = "示例"
ORIGINS = ("api", "portal", "form", "docx", "shipped", "cli")
#: What `save_scheme` did, in words (CLI and portal).
STATUS_TEXT = {
    "created": "已新建",
    "updated": "已修改",
    "versioned": "已存为新版本",
    "unchanged": "未变化",
}


@dataclass(frozen=True)
class Checked:
    """A scheme that passed every check: its normalised JSON form and the engine's Scheme."""

    parsed: dict[str, Any]
    scheme: Scheme


@dataclass(frozen=True)
class Saved:
    """What `save_scheme` did: `created`, `updated`, `versioned` or `unchanged`."""

    record: StoredScheme
    status: str


# -- reading and checking --------------------------------------------------------------------


def read_yaml(text: str) -> Any:
    """Parse YAML text; a syntax error or an alias (`*x`, a YAML bomb's tool) is a placed error."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise SchemeError(f"方案文本过大（最多 {MAX_SOURCE_BYTES} 字节）")
    if "\x00" in text:
        raise SchemeError("方案文本含有无效字符")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                at = event.start_mark
                where = f"第 {at.line + 1} 行第 {at.column + 1} 列" if at else "（顶层）"
                raise SchemeError.of([f"{where}: 不支持 YAML 别名（*引用）"])
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else "（顶层）"
        raise SchemeError.of([f"{where}: 不是有效的 YAML（{yaml_problem(exc.problem)}）"]) from None
    except yaml.YAMLError:
        raise SchemeError(f"不是有效的 YAML：{yaml_problem(None)}") from None


#: PyYAML's problems (English) in the words of the page, by how they begin; the place is
#: given beside them. Anything else is a general syntax error at that place.
YAML_PROBLEMS = (
    ("could not find expected ':'", "缺少冒号“:”，或上一行的引号、括号未闭合"),
    ("mapping values are not allowed", "此处不能出现“键: 值”：请检查缩进，值中含冒号时请加引号"),
    ("found character '\\t'", "含有制表符：请改用空格缩进"),
    ("did not find expected key", "缩进与上文不一致，此处应为“键: 值”"),
    ("did not find expected '-'", "列表项缩进与上文不一致"),
    ("expected <block end>", "缩进与上文不一致"),
    ("found unexpected end of stream", "文本意外结束：引号或括号未闭合"),
    ("expected ',' or ']'", "方括号 [ ] 未闭合，或其中缺少逗号"),
    ("expected ',' or '}'", "花括号 { } 未闭合，或其中缺少逗号"),
    ("found unknown escape character", "引号内的转义字符（\\）无效"),
)


def yaml_problem(problem: str | None) -> str:
    """Say a YAML syntax problem in Chinese (PyYAML says it in English)."""
    for start, words in YAML_PROBLEMS:
        if problem and problem.startswith(start):
            return words
    return "语法错误：请检查此处的缩进、冒号和引号"


def check_scheme(data: Any) -> Checked:
    """Validate parsed data as a scheme; raise SchemeError naming every problem by place."""
    scheme = parse_scheme(data)  # every problem at once, each by place
    try:
        model = SchemeFile.model_validate(data)
    except ValidationError:  # pragma: no cover - parse_scheme has refused it already
        raise SchemeError("方案无效") from None
    parsed = model.model_dump(mode="json", exclude_unset=True)
    return Checked(parsed=parsed, scheme=scheme)


def refusal(exc: SchemeError) -> InvalidValue:
    """The engine's refusal of an invalid scheme: 422, each problem in `detail` by place."""
    errors = exc.errors
    return InvalidValue(
        SCHEME_PROBLEMS,
        code="scheme_invalid",
        params={"n": len(errors)},
        detail=errors,
    )


def to_yaml(parsed: dict[str, Any]) -> str:
    """Write a parsed scheme as YAML (keys in the file's order, Chinese kept as it is)."""
    return yaml.safe_dump(parsed, allow_unicode=True, sort_keys=False, width=100)


_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["([^"]*)"\]')


def line_of(text: str, path: str) -> int | None:
    """The 1-based line of the YAML text where `path` (`categories[0].max_points`) is written.

    The deepest part of the path that exists is named (a missing key: its mapping's line).
    None when the text is not YAML or the path names no place in it.
    """
    if path.startswith("第 "):
        m = re.match(r"第 (\d+) 行", path)
        return int(m.group(1)) if m else None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    pos = 0
    while pos < len(path):
        m = _PART.match(path, pos)
        if m is None:
            break
        pos = m.end()
        key, index, quoted = m.group(1), m.group(2), m.group(3)
        if index is not None:
            if not isinstance(node, yaml.SequenceNode) or int(index) >= len(node.value):
                break
            node = node.value[int(index)]
        else:
            name = key if key is not None else quoted
            if not isinstance(node, yaml.MappingNode):
                break
            found = next((v for k, v in node.value if k.value == name), None)
            if found is None:
                break
            key_node = next(k for k, v in node.value if k.value == name)
            line = key_node.start_mark.line + 1
            node = found
            continue
        line = node.start_mark.line + 1
    return line


def placed_errors(exc: SchemeError, text: str | None = None) -> list[dict[str, Any]]:
    """Each problem as {"path", "message", "line"}: the line of the YAML text when known."""
    return [
        {**e, "line": line_of(text, e["path"]) if text and e["path"] else None} for e in exc.errors
    ]


# -- storing ---------------------------------------------------------------------------------


def require_admin(actor: User | None) -> None:
    """Refuse anyone but an admin (None: the system, e.g. `init`)."""
    if actor is not None and not actor.has_role(Role.ADMIN):
        raise Forbidden("只有管理员可以管理考核方案", code="role_required")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _scheme_values(record: StoredScheme) -> dict[str, Any]:
    return {"parsed": record.parsed}


def scheme_seen(record: StoredScheme) -> str:
    """The fingerprint of a stored version's content as it is now (the editor's `seen`)."""
    return fingerprint(_scheme_values(record))


def latest_version(session: Session, code: str, *, lock: bool = False) -> StoredScheme | None:
    """The newest version of a code (locked for update when `lock`), None when unknown."""
    stmt = (
        select(StoredScheme).where(StoredScheme.code == code).order_by(StoredScheme.version.desc())
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt.limit(1)).scalars().first()


def is_frozen(session: Session, record: StoredScheme) -> bool:
    """Tell whether an assessment was made from this version (then it never changes)."""
    if record.frozen_at is not None:
        return True
    used = session.scalar(
        select(func.count()).select_from(Assessment).where(Assessment.scheme_id == record.id)
    )
    return bool(used)


def _code_in_use(session: Session, code: str) -> bool:
    """Tell whether an assessment was made from any version of this code."""
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Assessment)
            .join(StoredScheme, StoredScheme.id == Assessment.scheme_id)
            .where(StoredScheme.code == code)
        )
    )


def is_example_scheme(parsed: dict[str, Any], name: str = "") -> bool:
    """A 示例 scheme: marked in its title (or its file name); never presented as real rules."""
    return EXAMPLE_MARK in str(parsed.get("title", "")) or EXAMPLE_MARK in name


def save_scheme(
    session: Session,
    data: Any,
    *,
    actor: User | None,
    source: str | None = None,
    source_format: str = "yaml",
    origin: str = "api",
    name: str = "",
    replaces: int | bool | None = True,
    seen: str | None = None,
) -> Saved:
    """Store a scheme after every check (nothing is stored while a problem remains); audited.

    `data` is the parsed scheme (from YAML, JSON or a form); `source` the text as given (YAML
    is written from `data` when None). A refused scheme raises `InvalidValue` with code
    `scheme_invalid` and the problems by place in `detail` (see `refusal`).

    `replaces` says what the editor started from: None, a new scheme (a copy for next year,
    a Word import), so an existing code is a 409 rather than overwritten; a version number,
    that version, so a save over a newer one (another admin's edit) is a 409; True (the
    default, the API and the CLI): whatever is latest. An unused version is edited in place
    (its number stays), so the editor also says what it showed (`seen`: `scheme_seen` of the
    version it opened): a version another admin saved over since is a 409
    `changed_since_opened`, nothing stored.
    """
    require_admin(actor)
    if origin not in ORIGINS:
        raise InvalidValue("方案来源无效", code="invalid_value")
    try:
        checked = check_scheme(data)
    except SchemeError as exc:
        raise refusal(exc) from None
    parsed = checked.parsed
    if source is None:
        source, source_format = to_yaml(parsed), "yaml"
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise InvalidValue(
            "方案文本过大（最多 %(max)s 字节）",
            code="scheme_too_large",
            params={"max": MAX_SOURCE_BYTES},
        )
    code = checked.scheme.code
    # Two saves of one code at once queue here: the second sees the first's version (a row
    # lock would hold nothing for a code that has no row yet, nor on SQLite).
    serialise(session, lock_key("scheme", code))
    latest = latest_version(session, code, lock=True)
    if replaces is not True and latest is not None and latest.version != replaces:
        raise Conflict(
            "方案 %(code)s 已存在（第 %(version)s 版），未保存：请在方案库中打开它修改，"
            "或为这份方案改用其他编号",
            code="scheme_exists",
            params={"code": code, "version": latest.version},
        )
    if latest is not None:
        check_seen(seen, _scheme_values(latest))
    now = utcnow()
    example = is_example_scheme(parsed, name)
    if latest is not None and latest.parsed == parsed:
        return Saved(latest, "unchanged")
    if latest is not None and latest.year != checked.scheme.year and _code_in_use(session, code):
        # An assessment runs under this code: a new version is that year's rules, revised.
        raise InvalidValue(
            "方案 %(code)s 是 %(year)s 年度考核所用的方案，新版本不能改为 %(new)s 年度；"
            "新年度的方案请另用编号（如复制为下一年度）",
            code="scheme_year_changed",
            params={"code": code, "year": latest.year, "new": checked.scheme.year},
        )
    if latest is not None and not is_frozen(session, latest):
        before = {"version": latest.version, "sha256": latest.sha256}
        latest.year, latest.title = checked.scheme.year, checked.scheme.title
        latest.source, latest.source_format = source, source_format
        latest.parsed, latest.sha256 = parsed, _sha256(source)
        latest.origin, latest.is_example, latest.updated_at = origin, example, now
        session.flush()
        _audit(session, actor, "scheme_updated", latest, {"before": before})
        return Saved(latest, "updated")
    record = StoredScheme(
        code=code,
        version=1 if latest is None else latest.version + 1,
        year=checked.scheme.year,
        title=checked.scheme.title,
        source=source,
        source_format=source_format,
        parsed=parsed,
        sha256=_sha256(source),
        origin=origin,
        is_example=example,
        created_by_id=actor.id if actor is not None else None,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    if latest is None:
        _audit(session, actor, "scheme_created", record, {})
        return Saved(record, "created")
    _audit(session, actor, "scheme_versioned", record, {"previous_id": latest.id})
    return Saved(record, "versioned")


def _audit(
    session: Session,
    actor: User | None,
    action: str,
    record: StoredScheme,
    extra: dict[str, Any],
) -> None:
    record_event(
        session,
        actor=actor,
        action=action,
        target_type="scheme",
        target_id=record.id,
        payload={
            "code": record.code,
            "version": record.version,
            "year": record.year,
            "title": record.title,
            "origin": record.origin,
            "sha256": record.sha256,
            "total_points": record.parsed.get("total_points"),
            **extra,
        },
    )


def get_stored_scheme(session: Session, scheme_id: int) -> StoredScheme:
    """A stored scheme by id, or NotFound."""
    record = session.get(StoredScheme, scheme_id)
    if record is None:
        raise NotFound("考核方案不存在", code="scheme_not_found")
    return record


def load_scheme(session: Session, scheme_id: int) -> Scheme:
    """The engine's `Scheme` of a stored scheme, for `install_scheme` (checked again).

    For making an assessment from it: the version is locked until the caller's transaction
    ends and read again under the lock. A save editing it in place (an unused version) that is
    in flight commits first and the assessment is made from what it wrote; a later save waits,
    then finds the version used (`use_scheme` froze it) and stores a new version.
    """
    lock_row(session, StoredScheme, scheme_id)
    record = session.execute(
        select(StoredScheme)
        .where(StoredScheme.id == scheme_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if record is None:
        raise NotFound("考核方案不存在", code="scheme_not_found")
    try:
        return parse_scheme(record.parsed)
    except SchemeError as exc:  # pragma: no cover - stored only after the same checks
        raise refusal(exc) from None


def find_scheme(session: Session, code_or_id: str) -> StoredScheme:
    """A stored scheme by id (digits) or by code (its newest version)."""
    text = code_or_id.strip()
    if text.isdecimal() and len(text) < 10:
        return get_stored_scheme(session, int(text))
    record = latest_version(session, text)
    if record is None:
        raise NotFound("考核方案不存在", code="scheme_not_found")
    return record


def use_scheme(
    session: Session, record: StoredScheme, assessment: Assessment, *, actor: User | None
) -> None:
    """Link an assessment to the stored scheme it was made from and freeze that version."""
    assessment.scheme_id = record.id
    first = record.frozen_at is None
    if first:
        record.frozen_at = utcnow()
    session.flush()
    if first:
        _audit(session, actor, "scheme_frozen", record, {"assessment_id": assessment.id})


def list_schemes(
    session: Session, *, limit: int = 50, before: int | None = None
) -> list[StoredScheme]:
    """Stored schemes, newest first (by id), `limit + 1` rows for paging."""
    stmt = select(StoredScheme).order_by(StoredScheme.id.desc()).limit(limit + 1)
    if before is not None:
        stmt = stmt.where(StoredScheme.id < before)
    return list(session.execute(stmt).scalars())


def frozen_ids(session: Session, ids: list[int]) -> set[int]:
    """Which of these stored schemes are frozen (one query)."""
    if not ids:
        return set()
    used = session.execute(
        select(Assessment.scheme_id).where(Assessment.scheme_id.in_(ids)).distinct()
    ).scalars()
    marked = session.execute(
        select(StoredScheme.id).where(StoredScheme.id.in_(ids), StoredScheme.frozen_at.is_not(None))
    ).scalars()
    return {i for i in used if i is not None} | set(marked)


def previous_scheme(session: Session, record: StoredScheme) -> StoredScheme | None:
    """What to compare a scheme with: its version before, else the newest earlier year's."""
    if record.version > 1:
        before = session.execute(
            select(StoredScheme).where(
                StoredScheme.code == record.code, StoredScheme.version == record.version - 1
            )
        ).scalar_one_or_none()
        if before is not None:
            return before
    return (
        session.execute(
            select(StoredScheme)
            .where(StoredScheme.year < record.year)
            .order_by(StoredScheme.year.desc(), StoredScheme.is_example, StoredScheme.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def import_shipped(session: Session, *, actor: User | None = None) -> list[Saved]:
    """Store every shipped scheme file (schemes/*.yaml) in the library; link installed ones.

    A shipped file whose code is already stored with the same content is left alone. An
    assessment installed from a shipped file (same code, no stored scheme yet) is linked to it,
    which freezes that version.
    """
    results = []
    for path in shipped_schemes():
        results.append(import_file(session, path, actor=actor, origin="shipped"))
    return results


def import_file(session: Session, path: Path, *, actor: User | None, origin: str = "cli") -> Saved:
    """Store one scheme file, YAML or JSON (read as YAML, of which it is a part); refused like
    any other source (placed problems)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise refusal(SchemeError(f"无法读取方案文件 {path.name}: {exc}")) from None
    try:
        data = read_yaml(text)
    except SchemeError as exc:
        raise refusal(exc) from None
    saved = save_scheme(
        session,
        data,
        actor=actor,
        source=text,
        source_format="json" if path.suffix.lower() == ".json" else "yaml",
        origin=origin,
        name=path.name,
    )
    assessment = session.execute(
        select(Assessment).where(
            Assessment.code == saved.record.code, Assessment.scheme_id.is_(None)
        )
    ).scalar_one_or_none()
    if assessment is not None and saved.record.version == 1:
        use_scheme(session, saved.record, assessment, actor=actor)
    return saved


# -- comparing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One difference between two schemes.

    `kind`: added, removed, reweighted (maximum changed), retitled; `level`: total,
    category, indicator, point.
    """

    kind: str
    level: str
    code: str
    title: str
    before: Decimal | None = None
    after: Decimal | None = None
    old_title: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON (points as decimal strings with two places)."""
        two = Decimal("0.01")
        return {
            "kind": self.kind,
            "level": self.level,
            "code": self.code,
            "title": self.title,
            "before": None if self.before is None else format(self.before.quantize(two), "f"),
            "after": None if self.after is None else format(self.after.quantize(two), "f"),
            "old_title": self.old_title,
        }


def _compare(
    level: str,
    old: dict[str, tuple[str, Decimal]],
    new: dict[str, tuple[str, Decimal]],
) -> list[Change]:
    changes: list[Change] = []
    for code, (title, points) in new.items():
        if code not in old:
            changes.append(Change("added", level, code, title, None, points))
            continue
        old_title, old_points = old[code]
        if old_points != points:
            changes.append(Change("reweighted", level, code, title, old_points, points))
        if old_title != title:
            changes.append(Change("retitled", level, code, title, old_points, points, old_title))
    for code, (title, points) in old.items():
        if code not in new:
            changes.append(Change("removed", level, code, title, points, None))
    return changes


def diff_schemes(old: Scheme, new: Scheme) -> list[Change]:
    """What changed from `old` to `new`: totals, categories, indicators and scoring points.

    Parts are matched by code; a part present in both with another maximum is re-weighted,
    with another title retitled.
    """
    changes: list[Change] = []
    for label, before, after in (
        ("total_points", old.total_points, new.total_points),
        ("converted_points", old.converted_points, new.converted_points),
    ):
        if before != after:
            changes.append(Change("reweighted", "total", label, label, before, after))
    changes += _compare(
        "category",
        {c.code: (c.title, c.max_points) for c in old.categories},
        {c.code: (c.title, c.max_points) for c in new.categories},
    )
    changes += _compare(
        "indicator",
        {i.code: (i.title, i.max_points) for i in old.indicators},
        {i.code: (i.title, i.max_points) for i in new.indicators},
    )
    changes += _compare(
        "point",
        {s.code: (s.title, s.max_points) for s in old.sub_items},
        {s.code: (s.title, s.max_points) for s in new.sub_items},
    )
    return changes


def diff_stored(session: Session, old: StoredScheme, new: StoredScheme) -> list[Change]:
    """`diff_schemes` of two stored schemes."""
    return diff_schemes(parse_scheme(old.parsed), parse_scheme(new.parsed))
