"""PII redaction (serving/gateway/redaction.py) on real-looking Chinese text, as the payload log sees it:
after the gateway's cleaning (so full-width digits and spaces arrive as ASCII)."""

from __future__ import annotations

import json

import pytest

from data_prep.clean import clean_text
from data_prep.errors import UserError
from serving.gateway.redaction import BUILTIN, Redactor, id_card_valid, load_redactor, luhn_valid

ID_CARD = "110105199003071239"  # a made-up number with a valid check digit
ID_CARD_X = "11010519491231002X"
BANK_CARD = "6222021234567890128"  # 19 digits, Luhn-valid
BANK_CARD_16 = "4111111111111111"


def redact(text: str) -> str:
    return Redactor(BUILTIN).redact(clean_text(text))


def test_the_check_digits_are_computed_as_the_standards_say():
    assert id_card_valid(ID_CARD) and id_card_valid(ID_CARD_X) and id_card_valid(ID_CARD_X.lower())
    assert not id_card_valid("110105199003071238")
    assert luhn_valid(BANK_CARD) and luhn_valid("4111 1111 1111 1111")
    assert not luhn_valid("6222021234567890127") and not luhn_valid("79927398713")  # Luhn-valid but 11 digits


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ("我的手机13812345678请尽快回电", "我的手机[PHONE]请尽快回电"),
        ("电话：+86 138-1234-5678。", "电话:[PHONE]。"),
        ("联系人张三 (+86)139 1234 5678 周一到周五", "联系人张三 [PHONE] 周一到周五"),
        ("客服热线0086-15912345678转2号", "客服热线[PHONE]转2号"),
        ("手机号１３８１２３４５６７８，收件人王五", "手机号[PHONE],收件人王五"),  # full-width, made ASCII by NFKC
        (f"身份证号{ID_CARD}已登记", "身份证号[ID_CARD]已登记"),
        (f"证件号码：{ID_CARD_X}，请核对", "证件号码:[ID_CARD],请核对"),
        (f"请转账到卡号{BANK_CARD}谢谢", "请转账到卡号[BANK_CARD]谢谢"),
        ("工行卡 4111 1111 1111 1111 尾号1111", "工行卡 [BANK_CARD] 尾号1111"),
        ("邮箱zhang.san+news@mail.example.com.cn有问题联系", "邮箱[EMAIL]有问题联系"),
        ("详见https://www.example.com/news/2023?id=5&from=wx。谢谢", "详见[URL]。谢谢"),
        ("访问www.qq.com看看，或写信到a@www.qq.com", "访问[URL]看看,或写信到[EMAIL]"),
        ("官网HTTP://Example.COM/path）结束", "官网[URL])结束"),
        # Chinese in a path or query is part of the URL: it runs to whitespace or CJK punctuation
        ("搜索链接https://a.cn/搜索?name=张三", "搜索链接[URL]"),
        ("见https://a.cn/搜索?name=张三，已发", "见[URL],已发"),  # "，" is "," after cleaning: ends the URL
        ("分享 https://m.tb.cn/h.5?u=李四&p=13812345678」收到", "分享 [URL]」收到"),
        ("链接http://a.cn/路径/张三。明天见", "链接[URL]。明天见"),
        ("(see http://a.cn/x).", "(see [URL])."),
    ],
)
def test_pii_in_chinese_text_becomes_typed_placeholders(raw, redacted):
    assert redact(raw) == redacted


@pytest.mark.parametrize(
    "text",
    [
        "订单号20231105123456789012345已发货",  # 25 digits: no phone or card cut out of a longer number
        "身份证号110105199003071238错了一位",  # the check digit does not match
        "卡号6222021234567890127无效",  # not Luhn-valid
        "价格12345元，库存1381234567件",  # 10 digits: too short for a mobile number
        "2023年第13812345678999期",  # a phone-shaped prefix of a longer number
        "座机010-12345678",  # a landline is not a mobile number
    ],
)
def test_numbers_that_are_not_pii_stay_readable(text):
    assert redact(text) == clean_text(text)


@pytest.mark.parametrize("text", ["a" * 10_000, "1" * 10_000, "http://" * 2_000, "a@" * 5_000])
def test_long_runs_of_one_character_are_redacted_in_one_pass(text):
    """Each rule may start only where its first character could not continue one (the lookbehinds), so a long
    run is scanned once, not once per position (the bench measures the time; here: the result)."""
    assert Redactor(BUILTIN).redact(text) == ("[URL]" if text.startswith("http") else text)


def test_a_rules_file_adds_rules_and_picks_built_in_ones(tmp_path):
    rules = tmp_path / "rules.json"
    custom = {"name": "QQ", "pattern": "QQ[:：]?[1-9][0-9]{4,10}"}
    rules.write_text(json.dumps({"builtin": ["EMAIL"], "rules": [custom]}), encoding="utf-8")
    redactor = load_redactor(str(rules))
    assert redactor is not None
    text = "加QQ:12345678或发邮件到a@b.cn，手机13812345678"
    assert redactor.redact(text) == "加[QQ]或发邮件到[EMAIL]，手机13812345678"
    card_rule = {"name": "CARD", "pattern": "[0-9]{16}", "check": "luhn"}
    rules.write_text(json.dumps({"builtin": False, "rules": [card_rule]}), encoding="utf-8")
    only_cards = load_redactor(str(rules))
    assert only_cards is not None
    assert only_cards.redact("卡4111111111111111和4111111111111112") == "卡[CARD]和4111111111111112"
    assert load_redactor("off") is None
    default = load_redactor("")
    assert default is not None and default.redact("13812345678") == "[PHONE]"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rules": [{"name": "QQ", "pattern": "("}]}, "not a valid regular expression"),
        ({"rules": [{"name": "qq", "pattern": "x"}]}, "upper-case"),
        ({"rules": [{"name": "QQ", "pattern": "x", "check": "crc"}]}, "check must be one of"),
        ({"builtin": ["PASSPORT"]}, "builtin must be"),
        ({"patterns": []}, "unknown keys"),
    ],
)
def test_a_bad_rules_file_is_one_readable_error(tmp_path, document, message):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UserError, match=message):
        load_redactor(str(rules))
    with pytest.raises(UserError, match="neither 'off' nor an existing JSON file"):
        load_redactor(str(tmp_path / "missing.json"))
