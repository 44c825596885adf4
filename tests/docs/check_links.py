#!/usr/bin/env python3
"""Dead-link check of the repository's Markdown, run by CTest (docs_links).

    python3 tests/docs/check_links.py [ROOT]

Fails (exit 1, one line per problem) when a relative link or image in a
Markdown file names a file that does not exist, a heading anchor (#...) that
the target page lacks, or a path outside the repository, which a clone or a
hosting service does not have; and when any file of the repository names a
Markdown file under docs/ or up a folder (../) that does not resolve inside
it (as a source comment citing the semantics page does). Links
into code spans and fenced blocks are not links; web addresses are not
fetched (the check runs offline).
"""
import functools
import os
import pathlib
import re
import subprocess
import sys

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HTML = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*\"([^\"]+)\"", re.I)
MENTION = re.compile(r"(?<![\w./-])((?:\.\./)+[\w./-]*\.md|docs/[\w./-]*\.md)")
FENCE = re.compile(r"^\s{0,3}(```|~~~).*?^\s{0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
SKIP_DIRS = {".git", "__pycache__", "node_modules"}
# A file holding this marker (the checker's own tests, with their planted
# bad paths) is exempt from the mention check; its Markdown links are not.
OPT_OUT = "check_links: " + "no-mentions"


def repository_files(root):
    """Tracked and untracked-but-not-ignored files; every file without git."""
    try:
        listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        out = subprocess.run(listing, cwd=root, capture_output=True, check=True).stdout
        return sorted({root / p for p in out.decode().split("\0") if p and (root / p).is_file()})
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith((".", "build"))]
            files += [pathlib.Path(folder) / n for n in names]
        return sorted(files)


def slug(heading):
    """The anchor a hosting service gives a heading (GitHub's rule)."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@functools.lru_cache(maxsize=None)
def anchors(path):
    """Anchors of a page's headings; a repeated heading gets -1, -2, ..."""
    text = FENCE.sub("", path.read_text(encoding="utf-8", errors="replace"))
    seen, found = {}, set()
    for heading in re.findall(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found | set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))


def check_target(root, source, target):
    """The problem with one link target, or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...
        return None
    path_part, _, fragment = target.partition("#")
    if path_part.startswith("/"):
        return f"absolute path {target} (use a path relative to {source.parent.name or 'the file'})"
    dest = (source.parent / path_part).resolve() if path_part else source
    if root != dest and root not in dest.parents:
        return f"{target} points outside the repository"
    if not dest.exists():
        return f"{target}: no such file"
    if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
        return f"{target}: {dest.name} has no heading with anchor #{fragment}"
    return None


def problems(root):
    root = pathlib.Path(root).resolve()
    found = []
    for path in repository_files(root):
        rel = path.relative_to(root)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files hold no links
        if path.suffix == ".md":
            prose = CODE_SPAN.sub("", FENCE.sub("", text))
            for pattern in (LINK, REFERENCE, HTML):
                for target in pattern.findall(prose):
                    reason = check_target(root, path, target)
                    if reason:
                        found.append(f"{rel}: {reason}")
        if OPT_OUT in text:
            continue
        for mention in set(MENTION.findall(text)):
            base = path.parent if mention.startswith("..") else root
            dest = (base / mention).resolve()
            if (root not in dest.parents) or not dest.exists():
                found.append(f"{rel}: mentions {mention}, which is not in the repository")
    return found


def main(argv):
    root = argv[1] if len(argv) > 1 else pathlib.Path(__file__).resolve().parents[2]
    found = problems(root)
    for line in found:
        print(line)
    print(f"check_links: {len(found)} broken link(s)" if found
          else "check_links: all links resolve")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
