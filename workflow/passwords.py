"""Password policy (ASVS 4.0.3 V2.1): length, no composition rules, not common or breached.

- At least 12 characters and at most 128 (V2.1.1, V2.1.2); any Unicode, spaces included, is
  accepted and kept as typed (V2.1.3, V2.1.4). No rule asks for digits, cases or symbols (V2.1.9).
- Refused when common or breached (V2.1.7): zxcvbn (MIT) matches the password against its
  frequency lists — the 30,000 most common passwords of leaked sets, English words, names —
  and against keyboard walks, sequences, repeats, dates and the account's own name, and
  estimates the guesses an attacker needs. Below 10^8 guesses (its score 3, "safely
  unguessable" against online attacks) the password is refused, with why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zxcvbn import zxcvbn

from workflow.errors import InvalidValue

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3
# zxcvbn's matching grows quickly with length; the first 64 characters decide (a password
# whose first 64 characters are not guessable is not guessable either).
_CHECKED_PREFIX = 64


def check_new_password(password: str, user_inputs: Iterable[str] = ()) -> None:
    """Raise InvalidValue naming what is wrong with a new password; return when it is fine."""
    if len(password) < MIN_LENGTH:
        raise InvalidValue(
            "密码至少 %(min)s 个字符（可以是一句话，含空格）",
            code="weak_password",
            params={"min": MIN_LENGTH},
        )
    if len(password) > MAX_LENGTH:
        raise InvalidValue(
            "密码最多 %(max)s 个字符", code="weak_password", params={"max": MAX_LENGTH}
        )
    inputs = []
    for value in user_inputs:  # "zhang.san" also as "zhangsan", "zhang" and "san"
        parts = [p for p in re.split(r"[._\-\s]+", value or "") if len(p) >= 3]
        inputs += [value, "".join(parts), *parts] if value else []
    result = zxcvbn(password[:_CHECKED_PREFIX], user_inputs=inputs)
    if result["score"] < MIN_SCORE:
        raise InvalidValue(
            "该密码是常见密码或已泄露密码，或由常见词语、键盘序列、重复字符、日期或用户名组成，"
            "容易被猜中；请换一个更独特的密码，例如由几个不相关的词组成的一句话",
            code="common_password",
        )
