"""The text of every error code, in Chinese (the msgid) with English in the Babel catalog.

A refusal carries a stable `code` and a message template with named parameters
(`评分项 %(sub_item)s 的得分须在 0 到 %(maximum)s 之间`, params `sub_item`, `maximum`). The engine
knows no Flask: the web layer installs a translator (`set_translator`) that looks the template
up in `web/portal/translations` for the request's language (the portal's `lang` cookie, the
API's `Accept-Language`) and formats it with the same parameters, so figures and codes survive
in both languages. Outside a request, and in Chinese, the template is formatted as it is.

`MESSAGES` gives each code one general text, without parameters. It is what a face shows when
it has nothing but the code (HTTP errors, storage refusals), and what English falls back to
when a raise site's own text is not in the catalog. `tests/unit/test_messages.py` scans the
source for every code and fails while one lacks its Chinese or English text.

Adding a refusal: raise it with a literal template (`InvalidValue("…%(n)s…", code="…",
params={"n": n})`, never an f-string), add the code here when it is new, then extract, update,
translate and compile the catalog (web/portal/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def N_(text: str) -> str:
    """Mark a text for extraction into the catalog; it is translated where it is shown."""
    return text


#: The parameter that chooses a counted text's English form (`Np_`).
COUNT = "n"


def Np_(text: str) -> str:
    """Mark a counted text (its `n` parameter: 1 项, 3 项) for extraction as a plural entry.

    Chinese has one form; English has two (1 item, 3 items). The catalog keeps both under the
    one Chinese msgid, and `render_stored` and the refusals' translator choose by `n` (an
    integer). Chinese reads as it is.
    """
    return text


class Term(str):
    """A Chinese word put into a message (a field's name), translated together with it."""

    __slots__ = ()


class Phrase(str):
    """A message put into another one (a refusal's reason): Chinese as text, translated with
    its own template and parameters when the outer message is."""

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, params: Mapping[str, object] | None = None) -> Phrase:
        phrase = super().__new__(cls, format_message(template, params or {}))
        phrase.template, phrase.params = template, dict(params or {})
        return phrase


class Lines(str):
    """Texts put one under another (a report's lines): Chinese as text, each line translated
    on its own when shown (a line may be a `Phrase`, a `Term` or plain data)."""

    lines: tuple[str, ...]

    def __new__(cls, lines: Iterable[str]) -> Lines:
        parts = tuple(lines)
        text = super().__new__(cls, "\n".join(parts))
        text.lines = parts
        return text


#: A stored text (`stored`): a msgid and its parameters, ``{"msgid": …, "params": {…}}``
#: (a `Term`: the msgid alone), or ``{"lines": […]}``; a parameter is such a text, or data.
StoredText = dict[str, Any]


def stored(text: str | None) -> StoredText | None:
    """Return what to keep of a text so it can be shown in any language later: its msgid and
    parameters (a `Phrase`, a `Term`, `Lines`), or None for plain text (data, or a text
    written before there were msgids: it is shown as it is).

    Stored beside the Chinese text (the job's line, the message's title and body), rendered
    by `render_stored` in the language of whoever reads it.
    """
    if isinstance(text, Phrase | Term | Lines):
        return _stored_value(text)
    return None


def _stored_value(value: object) -> Any:
    if isinstance(value, Phrase):
        params = {name: _stored_value(v) for name, v in value.params.items()}
        return {"msgid": value.template, "params": params} if params else {"msgid": value.template}
    if isinstance(value, Term):
        return {"msgid": str(value)}
    if isinstance(value, Lines):
        return {"lines": [_stored_value(line) for line in value.lines]}
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)  # data as the Chinese text shows it (a name, a Decimal, a date)


#: (msgid, msgid_plural, n) → the msgstr of the form `n` takes (gettext's `ngettext`).
PluralTranslate = Callable[[str, str, int], str]


def counted(
    template: str,
    params: Mapping[str, Any],
    translate: Callable[[str], str],
    plural: PluralTranslate | None,
) -> str:
    """The template in the reader's language: for a counted one (`Np_`, with an integer `n`)
    the form `n` takes; otherwise, or when the catalog has no plural entry for it, `translate`.
    (gettext answers a plural entry's singular to `translate`, whatever `n` is.)"""
    count = params.get(COUNT)
    if plural is not None and isinstance(count, int) and not isinstance(count, bool):
        text = plural(template, template, count)
        if text != template:
            return text
    return translate(template)


def render_stored(
    text: Any, translate: Callable[[str], str], plural: PluralTranslate | None = None
) -> str:
    """Render a stored text with `translate` (msgid → the msgstr of the reader's language)
    and `plural` (for a counted text, `Np_`: the form its `n` parameter takes).

    With the msgids themselves (Chinese) it gives back the text as it was written. A msgstr
    that does not fit its parameters raises (KeyError, TypeError, ValueError): the caller
    shows the stored Chinese text instead.
    """
    if not isinstance(text, dict):
        return "" if text is None else str(text)
    if "lines" in text:
        return "\n".join(render_stored(line, translate, plural) for line in text["lines"])
    msgid = str(text["msgid"])
    params = text.get("params")
    template = counted(msgid, params or {}, translate, plural)
    if not params:
        return template
    return template % {
        name: render_stored(value, translate, plural) if isinstance(value, dict) else value
        for name, value in params.items()
    }


#: code → its general Chinese text (no parameters). Keep sorted by code.
#: A stale version, with the versions: whoever changed the item (someone else, or the same
#: user on another page), the page is out of date.
STALE_VERSION_DETAIL = N_(
    "事项已被更新（他人或您在其他页面的操作；当前版本 %(current)s，页面上的版本 %(requested)s），"
    "请刷新后重试"
)
#: The same conflict in a bulk report: the reviewer ticked the item in a list and never saw a
#: version, so the text says what happened (the numbers stay in the API's fields).
BULK_STALE_DETAIL = N_("该事项在选中后已被他人（或您在其他页面）更改，请刷新列表后重新选择")

MESSAGES: dict[str, str] = {
    "account_disabled": N_("该账号已停用，请联系管理员"),
    "admin_required": N_("只有管理员可以进行此操作"),
    "alias_in_use": N_("该名称已被其他部门使用"),
    "alias_not_found": N_("别名不存在"),
    "already_published": N_("考核结果正在公示中"),
    "already_reopened": N_("该考核已重新开启"),
    "appeal_used": N_("该事项已申诉过一次，不能再次申诉"),
    "appeal_window_closed": N_("不在申诉期内"),
    "appeals_pending": N_("申诉期已结束，尚有申诉待决定"),
    "archive_integrity": N_("存储的材料缺失或与记录不一致，未生成归档"),
    "arrangement_changed": N_("工作日调整在预览之后已有变化，未录入；请重新预览后再确认"),
    "arrangement_empty": N_("请粘贴节假日安排通知的全文"),
    "arrangement_inconsistent": N_("节假日安排通知的日期前后不一致，未录入；请核对"),
    "arrangement_no_year": N_("未能从通知中读出年份"),
    "arrangement_too_long": N_("粘贴的内容过长，请只粘贴通知正文"),
    "arrangement_unreadable": N_("未能读出节假日安排通知中的日期"),
    "assessment_exists": N_("该年度的考核已存在：每个年度只有一个考核"),
    "assessment_final": N_("考核结果已最终确定"),
    "assessment_not_found": N_("考核不存在"),
    "assessment_published": N_("考核结果已公示，不能修改"),
    "bad_alias": N_("别名无效"),
    "bad_alias_kind": N_("别名类型须为 alias 或 office"),
    "bad_audience": N_("公示页面范围须为 public 或 signed_in"),
    "bad_cc": N_("抄送单位不能超过 500 个字符"),
    "bad_change_units": N_("调整涉及的单位不符合要求"),
    "bad_check_answer": N_("核查要点的回答须为是、否或不适用"),
    "bad_date": N_("日期无效"),
    "bad_days": N_("公示天数无效"),
    "bad_document_no": N_("发文字号无效"),
    "bad_effective_on": N_("生效日期无效"),
    "bad_email": N_("电子邮件地址无效"),
    "bad_header": N_("表头不符合模板"),
    "bad_idempotency_key": N_("Idempotency-Key 无效"),
    "bad_import": N_("导入数据无效"),
    "bad_kind": N_("类型无效"),
    "bad_name": N_("名称无效"),
    "bad_outcome": N_("完成情况须为按时完成、逾期完成或未完成"),
    "bad_period": N_("期间无效"),
    "bad_purpose": N_("未知的材料用途"),
    "bad_remind_days": N_("提前提醒的工作日数无效"),
    "bad_request": N_("请求格式错误"),
    "bad_status": N_("status 须为 accepted 或 rejected"),
    "bad_title": N_("标题无效"),
    "bad_unit_name": N_("单位名称无效"),
    "bad_username": N_("用户名只能包含字母、数字、点、下划线和连字符（2–64 位）"),
    "bad_webhook_url": N_("群机器人地址无效"),
    "bad_window": N_("申诉期无效"),
    "bad_working_days": N_("工作日数无效"),
    "bad_xlsx": N_("无法读取该 Excel 文件"),
    "bad_year": N_("考核年度无效"),
    "bulk_action_not_supported": N_("批量办理只支持初审通过、核实通过和退回修改"),
    "bulk_run_not_found": N_("批量办理记录不存在"),
    "calendar_unknown_year": N_("该年份不在工作日历范围内"),
    "change_document_required": N_("请填写调整依据的文号"),
    "change_note_not_applicable": N_("首次提交无需填写修改说明"),
    "change_note_on_submit_only": N_("只有提交时可以填写修改说明"),
    "change_note_required": N_("退回后重新提交，请填写修改说明"),
    "changed_since_opened": N_("该设置已被他人修改（在您打开页面之后），请查看最新内容后重新保存"),
    "check_note_required": N_("核查要点答“否”时，请在备注中说明存在的问题"),
    "check_required": N_("请逐项回答核查要点"),
    "checks_on_verify_only": N_("只有核实时可以回答核查要点"),
    "common_password": N_("该密码容易被猜中，请换一个更独特的密码"),
    "concurrent_change": N_("事项正被他人同时处理，请刷新后重试"),
    "conflict": N_("操作冲突，请刷新后重试"),
    "conversion_failed": N_("文件无法转换为预览，请下载后查看"),
    "converter_missing": N_("服务器未安装文件转换程序，只能下载查看"),
    "database_unavailable": N_("数据库暂时不可用，请稍后重试"),
    "date_required": N_("请填写日期"),
    "deadline_ambiguous": N_("截止日期和工作日数只能填写一项"),
    "deadline_before_start": N_("截止日期早于该阶段的开始日期"),
    "deadline_before_year": N_("考核日程不能早于考核年度"),
    "deadline_not_workday": N_("截止日期不是工作日"),
    "deadline_order": N_("截止日期不能早于上一阶段的截止日期"),
    "deduction_reason_required": N_("未得满分的评分项须填写扣分原因"),
    "demo_exists": N_("演示数据已存在"),
    "demo_on_live_data": N_("本系统已有数据：演示数据只能在新安装的系统上生成"),
    "department_kind": N_("信息和案例由部门自行报送"),
    "department_not_found": N_("部门不存在"),
    "department_record": N_("部门自行报送的记录不能由市职转办更正，请退回后由部门重新报送"),
    "department_required": N_("请指定部门"),
    "departments_not_scored": N_("尚有部门未完成评分，暂不能印发载明排名的汇总表"),
    "deviation_reason_required": N_("得分与平时考核建议分不同，请说明理由"),
    "document_no_required": N_("尚未设置考核结果通知书的发文字号"),
    "docx_declaration": N_("Word 文档含有 DOCTYPE 或实体声明，已拒绝"),
    "docx_render_failed": N_("在此信头上生成的通知书无效，请换用其他信头文件"),
    "duplicate_evidence": N_("该文件已上传（与已有材料内容相同）"),
    "duplicate_in_upload": N_("本次上传中有内容相同的文件，请只上传一份"),
    "duplicate_items": N_("同一事项选择了不止一次"),
    "empty_file": N_("文件为空"),
    "empty_filename": N_("文件名为空，请重命名后重新上传"),
    "evidence_not_found": N_("材料不存在"),
    "evidence_required": N_("提交前请至少上传一个佐证材料"),
    "file_required": N_("请选择要上传的文件"),
    "file_too_large": N_("文件超过大小上限"),
    "filename_not_utf8": N_("文件名不是 UTF-8 编码，无法识别；请重命名后重新上传"),
    "forbidden": N_("无权执行此操作"),
    "formula_without_value": N_("文件中有公式没有计算结果：请在 Excel 或 WPS 中打开并保存后再导入"),
    "four_eyes": N_("四眼原则：此操作须由另一人完成"),
    "guard_failed": N_("当前条件下不允许执行此操作"),
    "idempotency_key_reused": N_("该 Idempotency-Key 已用于另一个请求"),
    "import_has_errors": N_("导入文件存在错误，未导入任何内容"),
    "ingest_rejected": N_("文件被拒绝"),
    "input_too_long": N_("输入内容过长"),
    "internal_error": N_("服务器内部错误"),
    "invalid_character": N_("输入内容含有不允许的控制字符或无效字符"),
    "invalid_credentials": N_("用户名或密码错误"),
    "invalid_cursor": N_("cursor 无效"),
    "invalid_key": N_("文件标识无效"),
    "invalid_parameter": N_("查询参数无效"),
    "invalid_score": N_("得分无效"),
    "invalid_state": N_("事项当前状态不允许此操作"),
    "invalid_type": N_("字段类型错误"),
    "invalid_value": N_("值无效"),
    "item_not_found": N_("考核事项不存在"),
    "item_state_changed": N_("上传期间事项状态已变化，本次上传的文件未保存，请刷新后重试"),
    "job_crashed": N_("后台任务执行中发生意外错误，未能完成"),
    "job_not_done": N_("后台任务尚未完成"),
    "job_not_found": N_("后台任务不存在"),
    "last_admin": N_("不能取消唯一在用的管理员的管理员角色或停用该账号"),
    "malformed_json": N_("请求体不是有效的 JSON"),
    "malformed_yaml": N_("方案文本不是有效的 UTF-8 文本"),
    "merge_needs_two": N_("合并须有至少两个原单位，合并为一个新单位"),
    "method_not_allowed": N_("不支持该请求方法"),
    "no_items": N_("请至少选择一个事项"),
    "no_people": N_("文件中没有人员"),
    "not_a_docx": N_("文件不是 Word 文档（.docx）"),
    "not_all_scored": N_("尚有考核事项未评分"),
    "not_authenticated": N_("未登录或令牌无效"),
    "not_final": N_("只有已最终确定的考核可以重新开启"),
    "not_found": N_("资源不存在"),
    "not_involved_full_marks": N_("已核实不涉及的评分项应得满分，不能扣分"),
    "not_involved_on_submit_only": N_("只有提交时可以声明不涉及"),
    "not_own_department": N_("只有本部门的填报人员可以执行此操作"),
    "not_published": N_("考核结果尚未公示"),
    "nothing_changed": N_("没有需要更正的内容"),
    "nothing_scored": N_("尚无评分全部完成的部门"),
    "notice_file_missing": N_("通知书文件缺失，请联系管理员"),
    "notice_not_found": N_("通知书不存在"),
    "notice_not_issued": N_("通知书尚未印发"),
    "notice_record_altered": N_(
        "该文件在本系统中的登记内容与审计记录不一致（可能已被改动），无法核验其内容；"
        "请勿以此为准，并联系发文单位核实"
    ),
    "notification_not_found": N_("消息不存在"),
    "object_altered": N_(
        "该文件与上传时登记的内容不一致（可能已被改动或损坏），不能提供；请联系管理员核查"
    ),
    "object_not_found": N_("文件在存储中不存在"),
    "office_kind": N_("参会、督查检查记录由市职转办登记"),
    "one_file_only": N_("每次请求只能上传一个文件"),
    "override_breaks_order": N_("该工作日调整会打乱阶段截止日期的先后顺序，未保存"),
    "override_in_use": N_("有按工作日计算的截止日期要用到该工作日调整，不能删除"),
    "override_not_found": N_("该工作日调整不存在"),
    "own_department": N_("不能处理本部门的事项或记录"),
    "own_routine_record": N_("不能审核本人报送的平时考核记录"),
    "own_submission": N_("不能审核本人曾为部门经办的考核事项"),
    "password_change_required": N_("请先在门户修改初始密码或被重置的密码，再申请 API 令牌"),
    "pdf_unavailable": N_("暂时无法生成 PDF"),
    "period_not_started": N_("该期间尚未开始，不能提前报送或登记"),
    "period_out_of_window": N_("期间不在本年度考核计数范围内"),
    "preliminary_after_publication": N_("考核结果已公示，不再印发初步结果"),
    "previous_deadline_required": N_("按工作日计算的截止日期须先设置上一阶段的截止日期"),
    "proof_required": N_("声明不涉及的评分项须上传证明材料"),
    "reason_required": N_("请填写理由"),
    "reason_too_long": N_("理由不超过 2000 字"),
    "request_too_large": N_("请求体过大"),
    "rescore_reason_required": N_("复核改分须填写复核说明（部门可见）"),
    "role_required": N_("您的角色不能执行此操作"),
    "routine_already_reviewed": N_("该记录已是该审核结果，无需重复审核"),
    "routine_changed": N_("该记录已被他人处理，请刷新页面后再审核"),
    "routine_closed": N_("考核结果已公示，不再接受该年度的平时考核报送"),
    "routine_duplicate": N_("该部门本期已有同名的记录，同一记录不重复登记"),
    "routine_not_found": N_("平时考核记录不存在"),
    "routine_withdrawn": N_("该记录已撤销"),
    "ruling_required": N_("请对不涉及声明作出认定"),
    "rulings_on_verify_only": N_("只有核实时可以认定不涉及声明"),
    "same_name": N_("新名称与现名称相同，无需更名"),
    "scheme_exists": N_("该编号的方案已存在，未保存"),
    "scheme_invalid": N_("方案有错误，未保存"),
    "scheme_not_found": N_("考核方案不存在"),
    "scheme_required": N_("请选择考核方案"),
    "scheme_too_large": N_("方案文本过大"),
    "scheme_year_changed": N_("考核所用方案的新版本不能改为其他年度"),
    "scheme_year_mismatch": N_("方案的年度与考核年度不一致：请先在方案库中复制为该年度方案"),
    "score_out_of_range": N_("得分超出允许范围"),
    "score_precision": N_("得分最多两位小数"),
    "score_required": N_("缺少评分项的得分"),
    "scores_on_score_only": N_("只有评分和复核改分时可以填写得分和扣分原因"),
    "service_unavailable": N_("服务暂时不可用，请稍后重试"),
    "split_needs_two": N_("拆分须有一个原单位，拆分为至少两个新单位"),
    "stage_not_found": N_("没有这个考核阶段"),
    "stale_version": N_("事项已被更新（他人或您在其他页面的操作），请刷新后重试"),
    "start_required": N_("按工作日计算的自评提交截止须填写开始日期"),
    "storage_error": N_("文件存储出错"),
    "storage_unavailable": N_("文件存储暂时不可用，请稍后重试"),
    "sub_item_required": N_("不涉及证明材料须指定评分项"),
    "submission_deadline_passed": N_("已过自评提交截止日期"),
    "token_not_found": N_("令牌不存在"),
    "too_long": N_("输入内容过长"),
    "too_many_attempts": N_("尝试次数过多，请稍后再试"),
    "too_many_items": N_("批量办理一次最多 500 个事项，请缩小范围后分批办理"),
    "too_many_rows": N_("行数过多"),
    "unit_ended": N_("该单位已合并、拆分或撤销，请改选现单位"),
    "unit_name_in_use": N_("该名称已是其他单位的名称、别名或挂牌机构"),
    "unit_names_clash": N_("两个被考核单位名称相同，不能在同一年度考核中各为一个部门"),
    "unit_not_active": N_("该单位已合并、拆分或撤销，不能再调整"),
    "unit_not_found": N_("单位不存在"),
    "units_required": N_("请至少选择一个被考核单位"),
    "unknown_action": N_("未知的操作"),
    "unknown_change_kind": N_("未知的单位调整类型"),
    "unknown_channel": N_("未知的通知渠道"),
    "unknown_check": N_("核查要点不属于本指标"),
    "unknown_field": N_("请求体含有不支持的字段"),
    "unknown_kind": N_("未知的类型"),
    "unknown_parameter": N_("不支持的查询参数"),
    "unknown_role": N_("未知的角色"),
    "unknown_ruling": N_("该评分项没有不涉及声明，无需认定"),
    "unknown_stage": N_("未知的考核阶段"),
    "unknown_sub_item": N_("评分项不属于本指标"),
    "unsupported_file_type": N_("不支持的文件类型"),
    "unsupported_media_type": N_("不支持的内容类型"),
    "upload_lost": N_("上传的文件在保存前已被存储清理删除，请重新上传"),
    "user_disabled": N_("用户已停用"),
    "username_taken": N_("用户名已存在"),
    "verification_code_malformed": N_("验证码格式不正确"),
    "verification_not_found": N_("未找到该验证码对应的文件"),
    "version_required": N_("缺少或无效的 version（整数）"),
    "weak_password": N_("密码不符合要求"),
    "webhook_host_not_allowed": N_("群机器人地址的主机不在允许范围内"),
    "zip_bomb_suspected": N_("压缩内容异常（疑似压缩炸弹），已拒绝"),
}

#: The refusals of `scoring.pdf.PdfUnavailable` (scoring has no catalog of its own): the
#: portal and the API answer 503 `pdf_unavailable` with one of these.
PDF_OFFICE_MISSING = N_("服务器未安装 LibreOffice（soffice），无法生成 PDF，请下载 Word 版本")
PDF_CONVERSION_FAILED = N_("PDF 转换失败，请稍后重试或下载 Word 版本")

#: (template, params, code) → the text in the current language, or None for "as it is".
Translator = Callable[[str, Mapping[str, object], str], "str | None"]
_translator: Translator | None = None


def set_translator(translator: Translator | None) -> None:
    """Install the function that renders messages in the request's language (web layer)."""
    global _translator
    _translator = translator


def text_for(code: str) -> str:
    """Return the general Chinese text of an error code (the code itself when it has none)."""
    return MESSAGES.get(code, code)


def format_message(template: str, params: Mapping[str, object]) -> str:
    """Format a template in Chinese: `%(name)s` placeholders filled from `params`."""
    return template % dict(params) if params else template


def localize(template: str, params: Mapping[str, object], code: str) -> str:
    """Return the message in the current language (Chinese without a translator)."""
    if _translator is not None:
        text = _translator(template, params, code)
        if text is not None:
            return text
    return format_message(template, params)


@dataclass(frozen=True, slots=True)
class Note:
    """Something about an accepted value the office should know (a deadline on a day off, a
    number's year): kept as its template and parameters so it reads in the language of
    whoever sees it. `stage` names the deadline it is about, when it is about one."""

    code: str
    template: str
    params: Mapping[str, object] = field(default_factory=dict)
    stage: str | None = None

    @property
    def message(self) -> str:
        """The note in the current language."""
        return localize(self.template, self.params, self.code)

    def as_json(self) -> dict[str, Any]:
        """Return the API's representation (with `stage` for a deadline's note)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.stage is not None:
            body = {"stage": self.stage, **body}
        return body
