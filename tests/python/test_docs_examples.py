"""The Python examples of the docs run as written: every ```python block of
these pages is executed (signature listings are ```text blocks)."""
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/python.md", "docs/natten.md"]


def blocks():
    for page in PAGES:
        text = (REPO / page).read_text()
        for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)):
            yield pytest.param(code, id=f"{page}#{i}")


@pytest.mark.parametrize("code", list(blocks()))
def test_example_runs(code):
    exec(compile(code, "<docs example>", "exec"), {})


def test_every_page_has_examples():
    assert len(list(blocks())) >= 3
