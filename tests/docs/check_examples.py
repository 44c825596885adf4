#!/usr/bin/env python3
"""The docs' `gna` examples print what they say: run by CTest (docs_examples).

    python3 tests/docs/check_examples.py GNA_EXECUTABLE PAGE.md...

Every ```console block of the pages is a list of `$ gna ...` commands, each
followed by its output. The deterministic ones (`gna mask`, `gna sim`,
`gna --version`) are run with GNA_EXECUTABLE and their stdout and stderr
must equal the block's text; timings (`gna bench`, `gna check`) and other
programs are skipped. Exit 1 with a diff on the first mismatch of each.
"""
import difflib
import re
import shlex
import subprocess
import sys

BLOCK = re.compile(r"^```console\n(.*?)^```", re.M | re.S)
RUN = ("mask", "sim", "--version")


def examples(text):
    """(command words, expected output) of every `$ gna` line."""
    for block in BLOCK.findall(text):
        command, output = None, []
        for line in block.splitlines() + ["$ end"]:
            if line.startswith("$ "):
                if command:
                    yield command, "\n".join(output)
                words = shlex.split(line[2:])
                ours = len(words) > 1 and words[0] == "gna" and words[1] in RUN
                command = words if ours else None
                output = []
            else:
                output.append(line)


def main(argv):
    gna, pages = argv[1], argv[2:]
    failures = checked = 0
    for page in pages:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for words, expected in examples(text):
            done = subprocess.run([gna] + words[1:], capture_output=True, text=True)
            actual = (done.stdout + done.stderr).rstrip("\n")
            checked += 1
            if actual != expected.rstrip("\n"):
                failures += 1
                print(f"{page}: `{' '.join(words)}` printed something else:")
                print("\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                                     "docs", "gna", lineterm="")))
    print(f"check_examples: {checked} example(s), {failures} mismatch(es)")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
