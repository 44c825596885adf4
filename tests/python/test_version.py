"""One version number: the file VERSION, the C++ library, the installed
package's metadata and gna.__version__ agree."""
import importlib.metadata
import pathlib

import gna

VERSION_FILE = pathlib.Path(__file__).resolve().parents[2] / "VERSION"


def test_version_is_the_source_trees():
    assert gna.__version__ == VERSION_FILE.read_text().strip()


def test_version_is_the_libraries_and_the_packages():
    assert gna.__version__ == gna._C.version()
    assert importlib.metadata.version("gna") == gna.__version__
