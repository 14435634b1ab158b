"""Reading files of leads: encodings, headers in two languages, cells, limits."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest
from pydantic import ValidationError

from lead_router import importing
from lead_router.importing import lead_in_of
from salesrail import leads_file
from salesrail.leads_file import (
    LeadsFile,
    LeadsFileError,
    Row,
    TooManyRows,
    file_digest,
    for_each_row,
    open_leads_file,
    row_idempotency_key,
    same_lead_keys,
)

SHANGHAI = timezone(timedelta(hours=8))
CHINESE_CSV = (
    "公司名称,联系人,手机,城市,品类,预算,标签,接收时间,微信\n"
    "宁波某某机械有限公司,李经理,13912345678,宁波,机床,50万,"
    "展会，高意向;老客户,2024-03-01 09:30,wx_li\n"
)


def leads_of(data: bytes) -> LeadsFile:
    return open_leads_file(io.BytesIO(data))


def xlsx_of(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_a_utf8_csv_with_the_contract_names_gives_the_fields_as_written() -> None:
    data = (
        "source,company_name,contact_name,phone,city,category,email,external_id\n"
        "expo,杭州某某紧固件有限公司,王总,13812345678,杭州,紧固件,wang@example.com,e-1\n"
    ).encode()
    with leads_of(data) as leads:
        rows = list(leads.rows())
        assert (leads.format, leads.encoding) == ("csv", "utf-8")
    assert len(rows) == 1
    assert rows[0].number == 2  # the header is row 1, as a spreadsheet shows it
    assert rows[0].values == {
        "source": "expo",
        "company_name": "杭州某某紧固件有限公司",
        "contact_name": "王总",
        "phone": "13812345678",
        "city": "杭州",
        "category": "紧固件",
        "email": "wang@example.com",
        "external_id": "e-1",
    }


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_chinese_headers_map_to_fields_in_utf8_with_bom_and_in_gbk(encoding: str) -> None:
    with leads_of(CHINESE_CSV.encode(encoding)) as leads:
        [row] = list(leads.rows())
        expected = "utf-8-sig" if encoding == "utf-8-sig" else "gb18030"
        assert leads.encoding == expected
        assert leads.header.ignored == ("微信",)
    assert row.values["company_name"] == "宁波某某机械有限公司"
    assert row.values["contact_name"] == "李经理"
    assert row.values["city"] == "宁波"
    assert row.values["budget"] == 500_000
    assert row.values["tags"] == ["展会", "高意向", "老客户"]
    assert "微信" not in row.values and "wx_li" not in row.values.values()


def test_a_naive_received_at_is_shanghai_time_and_an_offset_is_kept() -> None:
    data = (
        "公司名称,联系人,手机,城市,品类,线索时间\n"
        "甲公司,张三,13812345678,杭州,紧固件,2024/3/1 9:30\n"
        "乙公司,李四,13812345679,杭州,紧固件,2024-03-01T09:30:00Z\n"
        "丙公司,王五,13812345670,杭州,紧固件,2024年3月1日\n"
        "丁公司,赵六,13812345671,杭州,紧固件,last tuesday\n"
    ).encode()
    with leads_of(data) as leads:
        moments = [r.values["received_at"] for r in leads.rows()]
    assert moments[0] == datetime(2024, 3, 1, 9, 30, tzinfo=SHANGHAI)
    assert moments[0].utcoffset() == timedelta(hours=8)
    assert moments[1] == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert moments[2] == datetime(2024, 3, 1, tzinfo=SHANGHAI)
    assert moments[3] == "last tuesday"  # left as written, so validation names the field


def test_empty_cells_are_absent_and_the_first_filled_phone_column_wins() -> None:
    data = (
        "公司名称,联系人,手机,电话,城市,品类,备注\n"
        "甲公司,张三,,0571-86123456,杭州,紧固件,\n"
        ",,,,,,\n"
        "乙公司,李四,13812345678,0571-86123457,宁波,机床,  \n"
    ).encode()
    with leads_of(data) as leads:
        rows = list(leads.rows())
    assert [r.number for r in rows] == [2, 4]  # the empty line is skipped, numbers stay true
    assert rows[0].values["phone"] == "0571-86123456"
    assert "notes" not in rows[0].values
    assert rows[1].values["phone"] == "13812345678"


def test_unknown_columns_are_reported_once_not_per_row() -> None:
    data = "公司名称,联系人,手机,城市,品类,微信,QQ\n" + "甲,张,13812345678,杭州,紧固件,w,q\n" * 3
    with leads_of(data.encode()) as leads:
        assert leads.header.ignored == ("微信", "QQ")
        assert all(
            set(r.values) == {"company_name", "contact_name", "phone", "city", "category"}
            for r in leads.rows()
        )


def test_headers_with_a_required_mark_a_unit_or_english_spacing_are_understood() -> None:
    data = (
        "*Company Name,Contact-Name,联系电话,城市,采购品类,预算（万元）,外部编号\n"
        "甲公司,张三,13812345678,杭州,紧固件,12,X-1\n"
    ).encode()
    with leads_of(data) as leads:
        [row] = list(leads.rows())
    assert row.values["company_name"] == "甲公司"
    assert row.values["contact_name"] == "张三"
    assert row.values["budget"] == 120_000
    assert row.values["external_id"] == "X-1"


def test_a_tab_separated_utf16_export_is_read() -> None:
    data = "公司名称\t联系人\t手机\t城市\t品类\n甲公司\t张三\t13812345678\t杭州\t紧固件\n"
    with leads_of(data.encode("utf-16")) as leads:
        [row] = list(leads.rows())
    assert row.values["phone"] == "13812345678"


def test_an_xlsx_made_by_excel_is_streamed_with_typed_cells() -> None:
    data = xlsx_of(
        [
            ["线索导出 2024-03"],  # a title line above the header
            [
                "公司名称",
                "联系人",
                "手机",
                "城市",
                "品类",
                "预算",
                "接收时间",
                "外部编号",
                "备注列",
            ],
            [
                "杭州某某紧固件有限公司",
                "王总",
                13812345678,
                "杭州",
                "紧固件",
                30000,
                datetime(2024, 3, 1, 9, 30),
                1001,
                "x",
            ],
            [None] * 9,
            [
                "宁波某某机械有限公司",
                "李经理",
                "13912345678",
                "宁波",
                "机床",
                None,
                date(2024, 3, 2),
                None,
                None,
            ],
        ]
    )
    with leads_of(data) as leads:
        rows = list(leads.rows())
        assert leads.format == "xlsx"
        assert leads.header.number == 2
        assert leads.header.ignored == ("备注列",)
        assert leads.count_rows() == 2
    assert [r.number for r in rows] == [3, 5]
    assert rows[0].values["phone"] == "13812345678"  # a number cell, not 13812345678.0
    assert rows[0].values["external_id"] == "1001"
    assert rows[0].values["budget"] == 30000
    assert rows[0].values["received_at"] == datetime(2024, 3, 1, 9, 30, tzinfo=SHANGHAI)
    assert rows[1].values["received_at"] == datetime(2024, 3, 2, tzinfo=SHANGHAI)
    assert "budget" not in rows[1].values


def test_missing_required_columns_are_named() -> None:
    with pytest.raises(LeadsFileError) as raised:
        leads_of("公司名称,联系人,城市\n甲,张,杭州\n".encode())
    assert raised.value.missing == ("phone", "category")
    assert "phone, category" in str(raised.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,  # an old .xls
        b"PK\x03\x04 not really a zip",
        b"just some text\nwithout any header we know\n",
    ],
    ids=["empty", "png", "xls", "broken-zip", "no-header"],
)
def test_what_is_not_a_file_of_leads_is_refused_as_a_whole(data: bytes) -> None:
    with pytest.raises(LeadsFileError):
        leads_of(data)


def test_more_rows_than_the_limit_are_refused_before_any_is_used() -> None:
    data = "公司名称,联系人,手机,城市,品类\n" + "甲,张,13812345678,杭州,紧固件\n" * 11
    with leads_of(data.encode()) as leads, pytest.raises(TooManyRows):
        leads.count_rows(limit=10)


def test_the_same_row_of_the_same_file_has_the_same_key() -> None:
    data = CHINESE_CSV.encode()
    digest = file_digest(io.BytesIO(data))
    assert digest == file_digest(io.BytesIO(data))
    assert digest != file_digest(io.BytesIO(data + b"\n"))
    assert row_idempotency_key(digest, 2) == f"import:{digest}:2"


def test_a_row_becomes_a_lead_through_the_one_definition_of_a_valid_lead() -> None:
    with leads_of(CHINESE_CSV.encode("gbk")) as leads:
        [row] = list(leads.rows())
    lead = lead_in_of(row.values, "import")
    assert lead.source == "import"
    assert lead.budget == 500_000
    assert lead.received_at == datetime(2024, 3, 1, 9, 30, tzinfo=SHANGHAI)
    assert lead_in_of({**row.values, "source": "expo"}, "import").source == "expo"


def test_a_bad_row_names_each_bad_field() -> None:
    values = {
        "company_name": "甲公司",
        "contact_name": "张三",
        "phone": "1" * 40,
        "category": "紧固件",
        "budget": "很多",
        "received_at": "last tuesday",
    }
    with pytest.raises(ValidationError) as raised:
        lead_in_of(values, "import")
    fields = {e["loc"][0] for e in raised.value.errors()}
    assert fields == {"phone", "city", "budget", "received_at"}


def test_rows_that_may_be_one_lead_share_a_key() -> None:
    first = Row(2, {"external_id": "e-1", "phone": "138 1234 5678", "company_name": "甲 公司"})
    same_phone = Row(3, {"phone": "+86 13812345678", "company_name": "乙公司"})
    same_company = Row(4, {"phone": "13900000000", "company_name": "甲公司"})
    assert set(same_lead_keys(first)) & set(same_lead_keys(same_phone))
    assert set(same_lead_keys(first)) & set(same_lead_keys(same_company))
    assert not set(same_lead_keys(same_phone)) & set(same_lead_keys(same_company))


async def test_rows_run_concurrently_but_one_leads_rows_in_file_order() -> None:
    rows = [Row(n, {"phone": "13812345678" if n % 2 else f"1390000000{n}"}) for n in range(10)]
    started: list[int] = []
    finished: list[int] = []
    in_flight = peak = 0

    async def work(row: Row) -> None:
        nonlocal in_flight, peak
        started.append(row.number)
        in_flight += 1
        peak = max(peak, in_flight)
        # Earlier rows take longer: without ordering, later ones would overtake them.
        await asyncio.sleep(0.01 * (10 - row.number))
        in_flight -= 1
        finished.append(row.number)

    await for_each_row(rows, work, concurrency=4)
    assert sorted(finished) == list(range(10))
    same_phone = [n for n in finished if n % 2]
    assert same_phone == [1, 3, 5, 7, 9]
    assert 1 < peak <= 4


async def test_a_failing_row_stops_the_rest_and_is_raised() -> None:
    done: list[int] = []

    async def work(row: Row) -> None:
        if row.number == 3:
            raise RuntimeError("boom")
        done.append(row.number)

    with pytest.raises(RuntimeError):
        await for_each_row([Row(n, {}) for n in range(100)], work, concurrency=2)
    assert len(done) < 99


HEADER = "公司名称,联系人,手机,城市,品类\n"
GOOD_ROW = "甲,张,13812345678,杭州,紧固件\n"


def test_blank_rows_count_against_the_row_limit() -> None:
    data = HEADER + GOOD_ROW + ",,,,\n" * 20 + GOOD_ROW
    with leads_of(data.encode()) as leads:
        assert leads.count_rows(limit=30) == 2
        with pytest.raises(TooManyRows):
            leads.count_rows(limit=10)  # 22 lines below the header, if only 2 rows


def test_a_long_run_of_blank_rows_ends_the_data_and_is_not_read_on() -> None:
    run = leads_file.BLANK_RUN_END
    data = HEADER + GOOD_ROW + ",,,,\n" * (run - 1) + GOOD_ROW + ",,,,\n" * run + GOOD_ROW
    with leads_of(data.encode()) as leads:
        assert [r.number for r in leads.rows()] == [2, run + 2]
        assert leads.count_rows(limit=2 * run) == 2  # trailing blank lines are not counted
    with pytest.raises(LeadsFileError):  # nor are blank lines above where a header could be
        leads_of((",,,,\n" * run + HEADER + GOOD_ROW).encode())


def test_an_xlsx_full_of_blank_rows_ends_at_the_blank_run() -> None:
    run = leads_file.BLANK_RUN_END
    rows: list[list[object]] = [["公司名称", "联系人", "手机", "城市", "品类"]]
    rows += [["甲", "张", "13812345678", "杭州", "紧固件"]] + [[None] * 5] * run + [["乙"] * 5]
    with leads_of(xlsx_of(rows)) as leads:
        assert [r.number for r in leads.rows()] == [2]


async def test_an_http_import_parses_rows_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop_thread = threading.get_ident()
    parsed_in: set[int] = set()
    values_of = leads_file._values_of

    def recording(cells: list[object], columns: tuple[object, ...]) -> dict[str, object]:
        parsed_in.add(threading.get_ident())
        return values_of(cells, columns)  # type: ignore[arg-type]

    async def receive(lead_in: object, key: str | None) -> Any:
        return SimpleNamespace(created=True, lead=SimpleNamespace(id="l", status="pooled"))

    data = HEADER + GOOD_ROW * 3 + ",,,,\n" * 500 + GOOD_ROW
    monkeypatch.setattr(leads_file, "_values_of", recording)
    report = await importing.import_file(
        io.BytesIO(data.encode()), receive=receive, default_source="x"
    )
    assert report.totals.created == 4
    assert parsed_in and loop_thread not in parsed_in


def zip_of(name: str, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_an_xlsx_packed_like_a_zip_bomb_is_refused_before_it_is_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("opened")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    bomb = zip_of("xl/sharedStrings.xml", b"<si><t>x</t></si>" * (1 << 20))  # 17 MB, ~1000x
    with pytest.raises(LeadsFileError, match="packed more than 100 times"):
        leads_of(bomb)
    monkeypatch.setattr(leads_file, "MAX_UNPACKED_BYTES", 1 << 20)
    big = zip_of("xl/worksheets/sheet1.xml", os.urandom((1 << 20) + 1), zipfile.ZIP_STORED)
    with pytest.raises(LeadsFileError, match="unpacks to more than"):
        leads_of(big)


def test_an_ordinary_xlsx_passes_the_zip_bomb_check() -> None:
    rows: list[list[object]] = [["公司名称", "联系人", "手机", "城市", "品类"]]
    rows += [[f"公司{n}", "张", 13812345678 + n, "杭州", "紧固件"] for n in range(2000)]
    with leads_of(xlsx_of(rows)) as leads:
        assert leads.count_rows() == 2000
