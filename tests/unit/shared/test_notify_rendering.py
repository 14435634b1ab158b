"""Lead text in robot messages: shown as typed, never as live markdown (links, images, @s)."""

from __future__ import annotations

import json
import re

import pytest

from salesrail.notify.channels import ChannelConfig, Message, build_request

NOW = 1_767_225_600.0
LINK = "https://salesrail.example/leads/42"
# What a public web form lets anyone type as a company or contact name.
HOSTILE_TITLE = "新线索：[系统通知：请重新登录](https://evil.example/login)"
HOSTILE_TEXT = (
    "公司 [系统通知：请重新登录](https://evil.example)\n"
    "![](https://x.example/p.png) <@zhangsan> <@all>\n"
    '# 紧急 | **加粗** _斜体_ `代码` > 引用 <font color="warning">红</font>\n'
    "[a]: https://evil.example/ref"
)
MESSAGE = Message(title=HOSTILE_TITLE, text=HOSTILE_TEXT, severity="warning", link=LINK)

CHANNELS = {
    "wecom": ChannelConfig(
        id="wx", type="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"
    ),
    "dingtalk": ChannelConfig(
        id="ding", type="dingtalk", url="https://oapi.dingtalk.com/robot/send?access_token=t"
    ),
}

# Markdown-significant characters not preceded by an escaping backslash.
_UNESCAPED = re.compile(r"(?<!\\)(?:\\\\)*[`*_\[\]()<>!#|]")


def markdown_of(kind: str, message: Message) -> str:
    body = json.loads(build_request(CHANNELS[kind], message, delivery_id=None, now=NOW).body)
    markdown = body["markdown"]
    return markdown["content"] if kind == "wecom" else markdown["text"]


@pytest.mark.parametrize("kind", ["wecom", "dingtalk"])
def test_lead_text_in_a_robots_markdown_has_no_live_link_image_or_mention(kind: str) -> None:
    markdown = markdown_of(kind, MESSAGE)

    ours = f"\n\n[{LINK}]({LINK})"
    assert markdown.endswith(ours)  # our link is kept, and is the only one
    rendered = markdown[: -len(ours)]
    prefix = "**" if kind == "wecom" else "#### "
    suffix_split = rendered.split("\n", 1)
    heading, text = suffix_split[0], suffix_split[1]
    assert heading.startswith(prefix)
    heading = heading.removeprefix(prefix).removesuffix("**")
    for part in (heading, text):
        assert not _UNESCAPED.search(part), part
    for live in (r"\]\(", r"!\[", r"<@", r"<font"):  # link, image, mention, colour tag
        assert not re.search(r"(?<!\\)" + live, rendered), live
    assert "evil.example" in text  # shown as typed, only inert


@pytest.mark.parametrize("kind", ["wecom", "dingtalk"])
def test_a_newline_in_a_title_cannot_start_markup_of_its_own(kind: str) -> None:
    message = Message(title="客户\n# 大标题\n[x](https://evil.example)", text="正文", link=LINK)

    markdown = markdown_of(kind, message)

    first_line = markdown.split("\n", 1)[0]
    assert "evil.example" in first_line  # the whole title stays inside our heading line
    assert "\n#" not in markdown and "](https://evil" not in markdown


def test_a_feishu_post_carries_lead_text_as_plain_text_and_only_our_link() -> None:
    channel = ChannelConfig(
        id="fs", type="feishu", url="https://open.feishu.cn/open-apis/bot/v2/hook/0b2c3d4e"
    )

    body = json.loads(build_request(channel, MESSAGE, delivery_id=None, now=NOW).body)

    lines = body["content"]["post"]["zh_cn"]["content"]
    elements = [element for line in lines for element in line]
    assert [e["tag"] for e in elements] == ["text", "a"]  # a post's text tag is not parsed
    assert [e["href"] for e in elements if e["tag"] == "a"] == [LINK]
