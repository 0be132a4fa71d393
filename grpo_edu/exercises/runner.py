"""The process one submission runs in: ``python -m grpo_edu.exercises.runner --results-fd N``.

It reads its job (JSON, from the grader) on stdin, enters the sandbox (``sandbox.enter``),
writes the submission's files into its working folder, and runs the notebook's cells one by
one in a fresh IPython shell: student cells as IPython runs them (magics work), harness cells
(where the instructor's test cells were) as plain calls that no input transformer or patch of
``grpo_edu.exercises`` sees. A harness cell observes the student's functions on the cases the
grader sent (``observe``) or trains with the student's loss, and sends what it saw back.

Everything goes to fd N as frames (``codec``): ``start`` / ``end`` of each cell (with the
cell's error text), one ``call`` per check (observations as data, or trained weights as a
safetensors blob), then ``done``. This process judges nothing: a student's code that changes
what it sends only changes its own data, which the grader judges against its own reference.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path

from . import sandbox


class _Channel:
    """Frames to the grader; a forked copy of this process exits instead of writing."""

    def __init__(self, fd: int):
        self.fd, self.stream, self.pid = fd, os.fdopen(fd, "wb"), os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass

    def send(self, payload, blob: bool = False) -> None:
        if os.getpid() != self.pid:
            os._exit(0)
        from .codec import write_frame

        write_frame(self.stream, payload, blob)


class _Capped:
    """A text stream that keeps writing to ``target`` until ``limit`` characters, then drops."""

    def __init__(self, target, limit: int):
        self.target, self.left, self.encoding = target, limit, "utf-8"

    def write(self, text: str) -> int:
        if self.left > 0:
            self.target.write(text[: self.left])
            if len(text) >= self.left:
                self.target.write("\n[output cut: the notebook printed too much]\n")
            self.target.flush()
        self.left -= len(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()


def _write_files(files: list[list[str]]) -> None:
    """The submission's folder, copied here (paths were checked by the grader; again here)."""
    for rel, data in files:
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts:
            continue
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    return InteractiveShell.instance(config=config)


def _error_text(err: BaseException | None) -> str | None:
    if err is None:
        return None
    try:
        return f"{type(err).__name__}: {err}"
    except BaseException:  # a hostile __str__
        return type(err).__name__


def run_code(shell, source: str) -> str | None:
    """Run a student cell as IPython does; its error as ``"Type: message"``, or None."""
    result = shell.run_cell(source, store_history=False)
    return _error_text(result.error_before_exec or result.error_in_exec)


def _function(shell, name: str):
    if name not in shell.user_ns:
        raise NameError(f"name {name!r} is not defined (did its cell run?)")
    return shell.user_ns[name]


def _cases_call(shell, call: dict) -> dict:
    from . import observe

    fn = _function(shell, call["fn"])
    cases = [observe.decode_case(c) for c in call["cases"]]
    data = [observe.encode(observe.observe(fn, case, call["wrt"])) for case in cases]
    return {"observations": data}


def _training_call(shell, call: dict, channel: _Channel, header: dict) -> None:
    from .checks.training import TrainingBudget, train_with_loss, weights_blob

    fn = _function(shell, call["fn"])
    result = train_with_loss(fn, TrainingBudget(**call["budget"]), call["seed"])
    blob = weights_blob(result.policy)
    channel.send({**header, "weights": len(blob)})
    channel.send(blob, blob=True)


def run_harness(shell, cell: dict, index: int, channel: _Channel) -> str | None:
    """Each check call of a harness cell: observe, then send. Errors of one call are its own."""
    for j, call in enumerate(cell["calls"]):
        header = {"event": "call", "cell": index, "call": j}
        try:
            if call["kind"] == "training":
                _training_call(shell, call, channel, header)
                continue
            payload = _cases_call(shell, call)
        except Exception as err:
            payload = {"error": _error_text(err)}
        channel.send({**header, **payload})
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grpo_edu.exercises.runner")
    parser.add_argument("--results-fd", type=int, required=True)
    args = parser.parse_args(argv)
    job = json.loads(sys.stdin.buffer.read())
    sandbox.enter(job["sandbox"])  # full isolation: only the sandboxed child comes back
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    channel = _Channel(args.results_fd)
    _write_files(job["files"])
    limit = job["sandbox"]["limits"]["output_kb"] * 1024
    sys.stdout, sys.stderr = _Capped(sys.stdout, limit), _Capped(sys.stderr, limit)
    import torch

    torch.set_num_threads(1)
    shell = _shell()
    channel.send({"event": "ready", "isolation": job["sandbox"]["isolation"], "uid": os.getuid()})
    for index, cell in enumerate(job["cells"]):
        channel.send({"event": "start", "cell": index})
        try:
            if cell["kind"] == "harness":
                error = run_harness(shell, cell, index, channel)
            else:
                error = run_code(shell, cell["source"])
        except BaseException as err:  # the cell timeout's KeyboardInterrupt, a SystemExit
            error = _error_text(err)
        channel.send({"event": "end", "cell": index, "error": error})
    channel.send({"event": "done"})
    sys.stdout.flush()
    os._exit(0)  # no atexit hooks that the student's code may have registered


if __name__ == "__main__":
    main()
