"""The docs' dead-link check (tests/docs/check_links.py) on small trees
with one known fault each, and on the repository itself.

check_links: no-mentions (the paths planted below are meant to be dead)
"""
import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_links", REPO / "tests/docs/check_links.py")
check_links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_links)


def tree(tmp_path, files):
    root = tmp_path / "repo"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return check_links.problems(root)


GOOD = {
    "README.md": "See [the rules](docs/semantics.md#one-axis) and ![plot](docs/plot.png).\n",
    "docs/semantics.md": "# Semantics\n## One axis\n## One axis\n[back](../README.md)\n"
                        "[twice](#one-axis-1) [site](https://example.org/x.md)\n",
    "docs/plot.png": "png",
    "src/window.hpp": "// the contract: docs/semantics.md\n",
}


def test_a_good_tree_passes(tmp_path):
    assert tree(tmp_path, GOOD) == []


@pytest.mark.parametrize("name, text, complaint", [
    ("docs/new.md", "[gone](missing.md)\n", "missing.md: no such file"),
    ("docs/new.md", "[anchor](semantics.md#two-axes)\n", "no heading with anchor #two-axes"),
    ("docs/new.md", "[up](../../shared/SEMANTICS.md)\n", "points outside the repository"),
    ("docs/new.md", "[abs](/work/shared/SEMANTICS.md)\n", "absolute path"),
    ("docs/new.md", "[ref]: nowhere.md\n", "nowhere.md: no such file"),
    ("docs/new.md", '<img src="img/none.png">\n', "img/none.png: no such file"),
    ("src/oracle.hpp", "// see ../shared/SEMANTICS.md\n", "mentions ../shared/SEMANTICS.md"),
    ("src/oracle.hpp", "// see docs/semantic.md\n", "mentions docs/semantic.md"),
])
def test_each_fault_is_named(tmp_path, name, text, complaint):
    found = tree(tmp_path, {**GOOD, name: text})
    assert found and all(f.startswith(name) for f in found), found
    assert any(complaint in f for f in found), found


def test_code_is_not_a_link(tmp_path):
    text = "`[x](missing.md)`\n\n```\n[y](missing.md)\n```\n"
    assert tree(tmp_path, {**GOOD, "docs/code.md": text}) == []


def test_the_repository_has_no_dead_link():
    assert check_links.problems(REPO) == []
