"""PII redaction for the payload log: what a rule matches becomes its typed placeholder, e.g. [PHONE]
(brackets, not <PHONE>: cleaning strips HTML-like tags, and a logged text re-scored by `textclf predict` keeps them).

Runs on the cleaned text (NFKC has already made full-width digits and spaces ASCII). The built-in rules,
in the order they apply: URL, EMAIL, ID_CARD (18-digit resident ID: region, a real birth date and the
ISO 7064 check digit, X allowed), BANK_CARD (16-19 digits, grouped by 4 or not, Luhn-valid) and PHONE
(mainland mobile 1[3-9]x, with +86 / 0086 / 86 and space or dash separators). Digits count as one number
only when no digit touches them, so Chinese characters or letters around a number never hide it, and a
longer number is never cut into a phone. A number failing its checksum is left as it is: order numbers
and the like stay readable, at the price of a mistyped ID or card number going through.

`TEXTCLF_PAYLOAD_REDACTION` configures it: empty = the built-in rules; `off` = none (say so only for data
that holds no PII); or the path of a JSON file:
    {"builtin": true, "rules": [{"name": "QQ", "pattern": "QQ[:：]?[1-9][0-9]{4,10}"}]}
`builtin` is true (all built-in rules), false, or a list of their names; `rules` are applied first, each
with a name (its placeholder is [NAME]), a Python regex and optionally "check": "luhn" or "id_card".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_prep.errors import UserError
from data_prep.json_file import read_json_object

SETTING = "TEXTCLF_PAYLOAD_REDACTION"
OFF = "off"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def id_card_valid(number: str) -> bool:
    """GB 11643: the 18th character is the ISO 7064 MOD 11-2 check of the first 17 digits."""
    digits = number.upper()
    if len(digits) != 18 or not digits[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11] == digits[17]


def luhn_valid(number: str) -> bool:
    """The Luhn check every bank card number (UnionPay included) carries; separators are ignored."""
    digits = [int(c) for c in number if c.isdigit()]
    if not 16 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


CHECKS: dict[str, Callable[[str], bool]] = {"luhn": luhn_valid, "id_card": id_card_valid}


@dataclass(frozen=True)
class Rule:
    name: str  # the placeholder is [name]
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None  # a match failing it is left as it is


_NO_DIGIT_BEFORE, _NO_DIGIT_AFTER = r"(?<![0-9])", r"(?![0-9])"
# a URL's host is ASCII ("www.qq.com看看" ends before 看); its path, query and fragment run to whitespace, CJK
# punctuation (CJK symbols, full-width forms, curly quotes, ellipsis, dashes) or an ASCII quote or angle bracket,
# Chinese characters included (https://a.cn/搜索?name=张三 is one URL). ASCII punctuation ends it where a Chinese
# character follows (cleaning turns "，" into ",") and is never its last character ("(see http://a.cn)." keeps
# ")."). Each character can be matched one way only, so matching stays linear in the text's length.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_URL_STOP = '\\s\u3000-\u303f\uff00-\uffef\u2018\u2019\u201c\u201d\u2026\u2014\u00b7"<>`'
_URL_SOFT = ".,!?;:)\\]}"
_URL = (
    r"(?<![A-Za-z0-9@.])(?:(?:https?|ftp)://|www\.)[A-Za-z0-9\-.:@%_~+]*"
    + rf"(?:[/?#](?:[^{_URL_STOP}{_URL_SOFT}]|[{_URL_SOFT}](?![{_CJK}]))*)?(?<![{_URL_SOFT}'(\[{{*])"
)
BUILTIN: tuple[Rule, ...] = (
    Rule("URL", re.compile(_URL, re.I)),
    Rule(
        "EMAIL",
        re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    ),
    Rule(
        "ID_CARD",
        re.compile(
            _NO_DIGIT_BEFORE
            + r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
            + _NO_DIGIT_AFTER
        ),
        id_card_valid,
    ),
    Rule(
        "BANK_CARD",
        re.compile(_NO_DIGIT_BEFORE + r"[0-9]{4}(?:[ \-]?[0-9]{4}){3}(?:[ \-]?[0-9]{1,3})?" + _NO_DIGIT_AFTER),
        luhn_valid,
    ),
    Rule(
        "PHONE",
        re.compile(r"(?<![0-9+])(?:\(?(?:\+|00)?86\)?[ \-]?)?1[3-9][0-9](?:[ \-]?[0-9]{4}){2}" + _NO_DIGIT_AFTER),
    ),
)


class Redactor:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    def redact(self, text: str) -> str:
        for rule in self.rules:
            text = rule.pattern.sub(_replacer(rule), text)
        return text


def _replacer(rule: Rule) -> Callable[[re.Match[str]], str]:
    placeholder = f"[{rule.name}]"
    check = rule.check
    if check is None:
        return lambda match: placeholder
    return lambda match: placeholder if check(match.group(0)) else match.group(0)


def load_redactor(setting: str) -> Redactor | None:
    """The redactor `TEXTCLF_PAYLOAD_REDACTION` asks for: None when "off"; mistakes are one UserError line."""
    setting = setting.strip()
    if not setting:
        return Redactor(BUILTIN)
    if setting.lower() == OFF:
        return None
    path = Path(setting)
    if not path.is_file():
        raise UserError(f"{SETTING}: neither {OFF!r} nor an existing JSON file: {setting!r}")
    return Redactor(_rules(read_json_object(path), path))


def _rules(document: dict[str, Any], path: Path) -> list[Rule]:
    where = f"{SETTING} file {path}"
    unknown = sorted(set(document) - {"builtin", "rules"})
    if unknown:
        raise UserError(f"{where}: unknown keys {unknown}; allowed: ['builtin', 'rules']")
    builtin = document.get("builtin", True)
    names = [rule.name for rule in BUILTIN]
    if builtin is True or builtin is False:
        kept = list(BUILTIN) if builtin else []
    elif isinstance(builtin, list) and all(name in names for name in builtin):
        kept = [rule for rule in BUILTIN if rule.name in builtin]
    else:
        raise UserError(f"{where}: builtin must be true, false or a list of {names}, got {builtin!r}")
    specs = document.get("rules", [])
    if not isinstance(specs, list):
        raise UserError(f'{where}: rules must be a list of {{"name", "pattern", "check"?}} objects')
    return [_rule(spec, f"{where} rules[{i}]") for i, spec in enumerate(specs)] + kept


def _rule(spec: Any, where: str) -> Rule:
    if not isinstance(spec, dict) or set(spec) - {"name", "pattern", "check"}:
        raise UserError(f'{where}: expected {{"name", "pattern", "check"?}}, got {spec!r}')
    name, pattern, check = spec.get("name"), spec.get("pattern"), spec.get("check")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"{where}: name must be upper-case letters, digits and _ (e.g. QQ), got {name!r}")
    if not isinstance(pattern, str) or not pattern:
        raise UserError(f"{where}: pattern must be a non-empty regular expression")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UserError(f"{where}: pattern {pattern!r} is not a valid regular expression: {exc}") from None
    if check is not None and check not in CHECKS:
        raise UserError(f"{where}: check must be one of {sorted(CHECKS)}, got {check!r}")
    return Rule(name, compiled, CHECKS[check] if check else None)
