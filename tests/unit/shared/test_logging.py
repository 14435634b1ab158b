import json
import logging

import structlog

from salesrail.logging import configure_logging, mask_phone_numbers


def test_phone_numbers_in_any_common_form_are_masked() -> None:
    assert mask_phone_numbers("call 13812345678 now") == "call 138****5678 now"
    assert mask_phone_numbers("+8613812345678") == "138****5678"
    assert mask_phone_numbers("138 1234 5678") == "138****5678"
    assert mask_phone_numbers("office 0571-88886666") == "office 057****6666"
    assert mask_phone_numbers("+4930123456789") == "493****6789"


def test_dates_ids_and_short_numbers_are_left_alone() -> None:
    for text in ("2026-11-23T05:28:58.648017Z", "order 1234567", "a3f6d4b02ac640fcaf1721ac1889"):
        assert mask_phone_numbers(text) == text


def test_log_lines_are_json_and_never_carry_a_full_phone_number(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging(service="unit", level="INFO", json=True)
    structlog.get_logger("t").info(
        "lead.received", phone="13812345678", nested={"p": ["13912345678"]}
    )
    logging.getLogger("uvicorn.error").info("client said 13712345678")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    text = json.dumps(lines, ensure_ascii=False)
    assert "13812345678" not in text and "13912345678" not in text and "13712345678" not in text
    assert lines[0]["phone"] == "138****5678"
    assert lines[0]["nested"] == {"p": ["139****5678"]}
    assert lines[0]["service"] == "unit"
    assert lines[1]["event"] == "client said 137****5678"
