"""A progress bar for sweeps on stderr: tqdm's when it is installed, else a
minimal one with the same few methods."""
import sys


class _Plain:
    def __init__(self, total, desc, file):
        self.total, self.desc, self.file, self.n, self.postfix = total, desc, file, 0, ""
        self.live = file.isatty()  # redraw one line; a log gets one line per step
        self._draw()

    def set_postfix_str(self, text):
        self.postfix = text
        self._draw()

    def update(self, steps=1):
        self.n += steps
        self._draw(final=not self.live)

    def _draw(self, final=False):
        if not (self.live or final):
            return
        filled = 20 * self.n // max(self.total, 1)
        bar = "#" * filled + "." * (20 - filled)
        text = f"{self.desc} [{bar}] {self.n}/{self.total} {self.postfix}"
        self.file.write(("\r" + text) if self.live else text + "\n")
        self.file.flush()

    def close(self):
        if self.live:
            self.file.write("\n")
            self.file.flush()


def progress(total, desc, enabled=True, file=None):
    """An object with update(n), set_postfix_str(text) and close()."""
    file = file or sys.stderr
    if not enabled:
        return _Plain(total, desc, _Null())
    try:
        from tqdm import tqdm
    except ImportError:
        return _Plain(total, desc, file)
    return tqdm(total=total, desc=desc, file=file, leave=False)


class _Null:
    def isatty(self):
        return False

    def write(self, text):
        pass

    def flush(self):
        pass
