"""A file of leads (CSV or .xlsx) read as rows of the contract's lead fields, lazily."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import hashlib
import io
import re
import zipfile
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO, Any
from zoneinfo import ZoneInfo

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000
# This many blank rows one after another end the data: what follows is not read at all.
BLANK_RUN_END = 1_000
# An .xlsx unpacking to more than this, or any part of it packed tighter than this, is refused
# before it is opened (a zip bomb would exhaust memory: openpyxl reads sharedStrings whole).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_PACKING_RATIO = 100
_RATIO_CHECKED_FROM = 1024 * 1024  # smaller parts are harmless, however well they pack
# Rows parsed per trip to a worker thread by `rows_off_loop`.
ROWS_PER_CHUNK = 200
# A naive time in a file from a Chinese sales team is local time there.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
REQUIRED = ("company_name", "contact_name", "phone", "city", "category")
# Title lines above the header ("线索导出 2024-03") are common in exports; look this far down.
HEADER_SEARCH_ROWS = 10

_ALIASES: dict[str, tuple[str, ...]] = {
    "company_name": (
        "company_name",
        "company",
        "公司名称",
        "企业名称",
        "公司",
        "客户名称",
        "单位名称",
    ),
    "contact_name": ("contact_name", "contact", "联系人", "联系人姓名", "姓名"),
    "phone": (
        "phone",
        "mobile",
        "tel",
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
        "电话号码",
    ),
    "city": ("city", "城市", "所在城市"),
    "category": ("category", "品类", "采购品类", "类别", "产品类别"),
    "source": ("source", "来源", "线索来源"),
    "budget": ("budget", "预算", "预算金额"),
    "purchase_timeframe": (
        "purchase_timeframe",
        "timeframe",
        "采购时间",
        "预计采购时间",
        "采购周期",
    ),
    "notes": ("notes", "note", "remarks", "备注", "说明"),
    "tags": ("tags", "tag", "标签"),
    "external_id": ("external_id", "外部编号", "线索编号"),
    "received_at": ("received_at", "接收时间", "线索时间"),
    "email": ("email", "e_mail", "邮箱", "电子邮箱", "邮件"),
}
_FIELD_OF = {alias: field for field, aliases in _ALIASES.items() for alias in aliases}
_TAG_SEPARATORS = re.compile(r"[,，;；、|]")
_UNIT_SUFFIX = re.compile(r"^(?P<base>.*?)\s*[（(](?P<unit>[^）)]*)[）)]$")
_TIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
)
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls


class LeadsFileError(ValueError):
    """The file as a whole cannot be read as leads; the message says why."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class TooManyRows(LeadsFileError):
    """More data rows than one import takes."""


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    field: str
    scale: float = 1.0  # 1e4 for a header such as 预算（万元）


@dataclass(frozen=True)
class Row:
    number: int  # as a spreadsheet shows it: the first line of the file is row 1
    values: dict[str, Any]  # contract field -> value; empty cells are absent


@dataclass(frozen=True)
class Header:
    number: int
    columns: tuple[Column, ...]
    ignored: tuple[str, ...]


class LeadsFile:
    """An open file of leads: its format, its header and its rows, read from the start each time."""

    def __init__(self, binary: IO[bytes]) -> None:
        self._binary = binary
        self._workbook: Any = None
        self.encoding: str | None = None
        self._delimiter = ","
        self.format = _sniff_format(binary)
        if self.format == "xlsx":
            self._workbook = _open_workbook(binary)
        else:
            self.encoding = _detect_encoding(binary)
            self._delimiter = _sniff_delimiter(binary, self.encoding)
        raw = self._raw_rows()
        try:
            self.header = _find_header(raw)
        except BaseException:
            self.close()
            raise
        finally:
            raw.close()  # the CSV text wrapper lets go of the file before the next read

    def rows(self) -> Generator[Row, None, None]:
        """The data rows below the header; rows with nothing in a known column are skipped.
        `BLANK_RUN_END` blank rows one after another end the data."""
        for _number, row in self._lines():
            if row is not None:
                yield row

    def count_rows(self, limit: int = MAX_ROWS) -> int:
        """How many data rows there are; TooManyRows when more than `limit` lines below the
        header, blank ones included, come before the end of the data (the file is read once)."""
        count = 0
        for number, row in self._lines():
            if row is None:
                continue  # blank lines count once a row follows them: trailing ones do not
            if number - self.header.number > limit:
                raise TooManyRows(f"the file has more than {limit} rows; split it")
            count += 1
        return count

    def _lines(self) -> Generator[tuple[int, Row | None], None, None]:
        """Each line below the header up to the end of the data: its Row, or None when there
        is nothing in a known column."""
        blank_run = 0
        for number, cells in self._raw_rows():
            if number <= self.header.number:
                continue
            values = _values_of(cells, self.header.columns)
            if values:
                blank_run = 0
                yield number, Row(number, values)
                continue
            blank_run = 0 if any(_text(c) for c in cells) else blank_run + 1
            if blank_run >= BLANK_RUN_END:
                return
            yield number, None

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()  # read-only workbooks keep the archive open

    def __enter__(self) -> LeadsFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _raw_rows(self) -> Generator[tuple[int, list[Any]], None, None]:
        try:
            if self._workbook is not None:
                yield from _xlsx_rows(self._workbook)
            else:
                assert self.encoding is not None
                yield from _csv_rows(self._binary, self.encoding, self._delimiter)
        except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            if isinstance(exc, LeadsFileError):
                raise
            raise LeadsFileError(f"the file cannot be read past some point: {exc}") from exc


def open_leads_file(binary: IO[bytes]) -> LeadsFile:
    """Open a seekable binary file as leads; LeadsFileError when it is not a file of leads."""
    return LeadsFile(binary)


async def rows_off_loop(rows: Iterator[Row], chunk: int = ROWS_PER_CHUNK) -> AsyncIterator[Row]:
    """`rows`, parsed `chunk` at a time in a worker thread: the event loop never parses."""
    while True:
        reading = asyncio.ensure_future(asyncio.to_thread(_take, rows, chunk))
        try:
            batch = await asyncio.shield(reading)
        except asyncio.CancelledError:
            # The thread finishes its chunk before the caller closes the rows and the file.
            await asyncio.wait([reading])
            raise
        for row in batch:
            yield row
        if len(batch) < chunk:
            return


def _take(rows: Iterator[Row], count: int) -> list[Row]:
    return [row for _, row in zip(range(count), rows, strict=False)]


def file_digest(binary: IO[bytes]) -> str:
    """SHA-256 of the whole file, read in chunks; the file is rewound afterwards."""
    binary.seek(0)
    digest = hashlib.sha256()
    while chunk := binary.read(1 << 16):
        digest.update(chunk)
    binary.seek(0)
    return digest.hexdigest()


def row_idempotency_key(digest: str, row_number: int) -> str:
    """The same row of the same file is the same lead, however often it is imported."""
    return f"import:{digest}:{row_number}"


def same_lead_keys(row: Row) -> tuple[str, ...]:
    """What two rows share when they may be one lead: external id, phone, company name."""
    values = row.values
    keys = []
    if external_id := values.get("external_id"):
        keys.append(f"external_id:{values.get('source', '')}:{external_id}")
    if phone := values.get("phone"):
        digits = re.sub(r"\D", "", str(phone))
        digits = digits.removeprefix("86") if len(digits) > 11 else digits
        keys.append(f"phone:{digits.lstrip('0')}")
    if company := values.get("company_name"):
        keys.append("company:" + re.sub(r"\s+", "", str(company)).casefold())
    return tuple(keys)


async def for_each_row(
    rows: Iterable[Row] | AsyncIterable[Row],
    work: Callable[[Row], Awaitable[None]],
    *,
    concurrency: int,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Run `work` on each row, `concurrency` at a time. Rows that may be the same lead run one
    after another in file order, so the first such row in the file is always the one kept."""
    slots = asyncio.Semaphore(concurrency)
    latest: dict[str, asyncio.Task[None]] = {}
    running: set[asyncio.Task[None]] = set()
    failures: list[Exception] = []

    async def run(row: Row, before: set[asyncio.Task[None]]) -> None:
        try:
            if before:
                await asyncio.wait(before)
            if not failures:
                await work(row)
        except Exception as exc:  # kept, and raised once every started row has finished
            failures.append(exc)
        finally:
            slots.release()

    def forget(task: asyncio.Task[None], keys: tuple[str, ...]) -> None:
        running.discard(task)
        for key in keys:
            if latest.get(key) is task:
                del latest[key]

    try:
        async with contextlib.aclosing(_each(rows)) as each:
            async for row in each:
                if failures or stopped():
                    break
                await slots.acquire()
                keys = same_lead_keys(row)
                task = asyncio.create_task(run(row, {latest[k] for k in keys if k in latest}))
                running.add(task)
                task.add_done_callback(lambda t, keys=keys: forget(t, keys))  # type: ignore[misc]
                for key in keys:
                    latest[key] = task
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    if failures:
        raise failures[0]


async def _each(rows: Iterable[Row] | AsyncIterable[Row]) -> AsyncIterator[Row]:
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row


def missing_columns_message(missing: tuple[str, ...]) -> str:
    return "the file has no column for: " + ", ".join(missing)


def _sniff_format(binary: IO[bytes]) -> str:
    binary.seek(0)
    head = binary.read(8192)
    binary.seek(0)
    if not head:
        raise LeadsFileError("the file is empty")
    if head.startswith(_XLSX_MAGIC):
        return "xlsx"
    if head.startswith(_OLE_MAGIC):
        raise LeadsFileError("old .xls files are not read; save it as .xlsx or CSV")
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in head and not utf16:
        raise LeadsFileError("the file is neither CSV nor .xlsx")
    return "csv"


def _open_workbook(binary: IO[bytes]) -> Any:
    _refuse_zip_bomb(binary)
    try:
        return openpyxl.load_workbook(binary, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise LeadsFileError(f"the file is not a readable .xlsx workbook ({exc})") from exc


def _refuse_zip_bomb(binary: IO[bytes]) -> None:
    """Sizes from the archive's directory; Python's zipfile never unpacks past them."""
    binary.seek(0)
    try:
        with zipfile.ZipFile(binary) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise LeadsFileError(f"the file is not a readable .xlsx workbook ({exc})") from exc
    finally:
        binary.seek(0)
    if sum(p.file_size for p in parts) > MAX_UNPACKED_BYTES:
        raise LeadsFileError(
            f"the workbook unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MB; "
            "split it or save it as CSV"
        )
    for part in parts:
        if part.file_size >= _RATIO_CHECKED_FROM and (
            part.file_size > MAX_PACKING_RATIO * part.compress_size
        ):
            raise LeadsFileError(
                f"the workbook's part {part.filename} is packed more than {MAX_PACKING_RATIO} "
                "times tighter than a spreadsheet can be; it is not read"
            )


def _xlsx_rows(workbook: Any) -> Iterator[tuple[int, list[Any]]]:
    sheet = workbook.worksheets[0]
    # Some writers store a wrong size ("A1"); read-only mode would then cut rows and columns.
    sheet.reset_dimensions()
    for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield number, list(cells)


def _detect_encoding(binary: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else GB18030."""
    binary.seek(0)
    head = binary.read(4)
    binary.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode text" export
    if _decodes(binary, "utf-8"):
        return "utf-8"
    # Chinese Excel saves CSV in the system code page, GBK; GB18030 is its superset.
    if _decodes(binary, "gb18030"):
        return "gb18030"
    raise LeadsFileError("the file is neither UTF-8 nor GBK/GB18030 text")


def _decodes(binary: IO[bytes], encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    binary.seek(0)
    try:
        while chunk := binary.read(1 << 16):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False
    finally:
        binary.seek(0)


def _sniff_delimiter(binary: IO[bytes], encoding: str) -> str:
    """The header line's most frequent separator among comma, tab and semicolon."""
    binary.seek(0)
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    try:
        first = text.readline(65536)
    finally:
        text.detach()  # the caller owns the binary file; do not let the wrapper close it
        binary.seek(0)
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(binary: IO[bytes], encoding: str, delimiter: str) -> Iterator[tuple[int, list[Any]]]:
    binary.seek(0)
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    try:
        yield from enumerate(csv.reader(text, delimiter=delimiter), start=1)
    finally:
        with contextlib.suppress(ValueError):  # the file may already be closed by its owner
            text.detach()


def _find_header(raw_rows: Iterator[tuple[int, list[Any]]]) -> Header:
    seen = blank = 0
    for number, cells in raw_rows:
        if not any(_text(c) for c in cells):
            blank += 1
            if blank >= BLANK_RUN_END:
                break
            continue
        blank = 0
        header = _header_of(number, cells)
        if header.columns:
            missing = tuple(f for f in REQUIRED if f not in {c.field for c in header.columns})
            if missing:
                raise LeadsFileError(missing_columns_message(missing), missing=missing)
            return header
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    raise LeadsFileError(
        "no header row naming the lead fields was found; "
        + missing_columns_message(REQUIRED).removeprefix("the file has "),
        missing=REQUIRED,
    )


def _header_of(number: int, cells: list[Any]) -> Header:
    columns: list[Column] = []
    ignored: list[str] = []
    for index, cell in enumerate(cells):
        title = _text(cell)
        if not title:
            continue
        field, scale = _field_of(title)
        if field is None:
            ignored.append(title)
        else:
            columns.append(Column(index, title, field, scale))
    return Header(number, tuple(columns), tuple(ignored))


def _field_of(title: str) -> tuple[str | None, float]:
    """'*预算（万元）' -> ('budget', 1e4); 'Company Name' -> ('company_name', 1)."""
    name = title.strip().lstrip("\ufeff*＊").strip()
    scale = 1.0
    if match := _UNIT_SUFFIX.match(name):
        name = match["base"]
        scale = 1e4 if "万" in match["unit"] else 1.0
    key = re.sub(r"[\s\-]+", "_", name.lower())
    return _FIELD_OF.get(key), scale


def _values_of(cells: list[Any], columns: tuple[Column, ...]) -> dict[str, Any]:
    """The first non-empty column wins when several map to one field (手机 and 电话)."""
    values: dict[str, Any] = {}
    for column in columns:
        if column.field in values or column.index >= len(cells):
            continue
        value = _convert(column, cells[column.index])
        if value is not None and value != []:
            values[column.field] = value
    return values


def _convert(column: Column, cell: Any) -> Any:
    if column.field == "received_at":
        return _moment(cell)
    if column.field == "budget":
        return _amount(cell, column.scale)
    text = _text(cell)
    if text is None:
        return None
    if column.field == "tags":
        return [t.strip() for t in _TAG_SEPARATORS.split(text) if t.strip()]
    return text


def _text(cell: Any) -> str | None:
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < 1e15:
        cell = int(cell)  # a phone or id typed into a number cell: 13812345678.0
    if isinstance(cell, datetime | date | time):
        return cell.isoformat()
    text = str(cell).strip()
    return text or None


def _amount(cell: Any, scale: float) -> Any:
    """'50万', '¥12,000', 3000 -> a number in CNY; anything else as written, for a clear error."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return cell * scale
    text = _text(cell)
    if text is None:
        return None
    number = re.sub(r"[,，\s]", "", text).lstrip("¥￥").removesuffix("元")
    unit = 1.0
    if number.endswith("万"):
        number, unit = number[:-1], 1e4
    elif number.endswith("亿"):
        number, unit = number[:-1], 1e8
    try:
        return float(number) * unit * scale
    except ValueError:
        return text


def _moment(cell: Any) -> Any:
    """A point in time; a naive one is local (Asia/Shanghai). Unreadable text stays as written."""
    if isinstance(cell, datetime):
        moment = cell
    elif isinstance(cell, date):
        moment = datetime.combine(cell, time())
    else:
        text = _text(cell)
        if text is None:
            return None
        parsed = _parse_time(text)
        if parsed is None:
            return text
        moment = parsed
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_ZONE)


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in _TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None
