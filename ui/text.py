"""Values from a visitor, a recipe PNG or fal, shown as text: never as Markdown or HTML.

    f"**Prompt used:** {as_text(result.prompt)}"     # in a gr.Markdown
    gr.Error(error_text(error.message))                # a notice (Gradio shows it as HTML)

The page's status line and result details are Markdown components; a value dropped into
them could otherwise bring a live link, a tracking image or HTML into the page.
"""

from __future__ import annotations

import html
import re
from typing import Any

# Markdown's punctuation that can start a link, an image, emphasis, a heading, a table,
# code or a strike-through: each is backslash-escaped (CommonMark shows it as itself).
_MARKDOWN = re.compile(r"([\\`*_\[\]()#!|~{}$])")
# What GitHub-flavoured Markdown turns into a link by itself: "https://…", "www.…", "a@b.c".
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])(:)(?=//)|(?<=\bwww)(\.)|(@)")


def as_text(value: Any) -> str:
    """`value` as text in Markdown: HTML's `& < >` as entities, Markdown's punctuation
    escaped, bare URLs and e-mail addresses broken so that they are not linked, and
    line breaks kept."""
    text = html.escape("" if value is None else str(value), quote=False)
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    return text.replace("\r\n", "\n").replace("\n", "  \n")


def as_code(value: Any) -> str:
    """`value` as a Markdown code span: shown exactly as it is (no Markdown, no HTML inside),
    fenced with more backticks than it holds."""
    text = " ".join(("" if value is None else str(value)).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def error_text(message: Any) -> str:
    """A notice's message as text: Gradio shows a `gr.Error`'s message as (sanitised)
    HTML, which keeps links and images."""
    return html.escape("" if message is None else str(message), quote=False)
