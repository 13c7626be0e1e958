"""datatrove's console output (per-task INFO lines, pipeline banners, stats blocks) goes to a log file.

datatrove logs with loguru to `sys.stderr` as it is when each task starts (`add_task_logger`), in
the worker processes as well as the parent. `QuietLocalExecutor` points `sys.stderr` at
`<job logs>/console.log` around the parent's run and each task, so every line lands in that file
(next to datatrove's own `logs/task_*.log`); errors still raise and reach the console as exceptions.
"""

from __future__ import annotations

import contextlib
import os

from datatrove.executor import LocalPipelineExecutor
from datatrove.utils.logging import setup_default_logger
from loguru import logger

CONSOLE_LOG = "console.log"


@contextlib.contextmanager
def console_to(path: str):
    """While active, datatrove's loguru output and anything printed to stderr are appended to `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as stream, contextlib.redirect_stderr(stream):
        logger.remove()
        logger.add(stream, level="DEBUG")
        try:
            yield
        finally:
            logger.remove()
    setup_default_logger()  # datatrove's own default sink, on the real stderr again


class QuietLocalExecutor(LocalPipelineExecutor):
    """A LocalPipelineExecutor whose console output goes to `<logging_dir>/console.log`."""

    def _console_log(self) -> str:
        return self.logging_dir.resolve_paths(CONSOLE_LOG)

    def _launch_run_for_rank(self, rank: int, ranks_q, completed=None, completed_lock=None):
        with console_to(self._console_log()):  # runs in the worker process
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)

    def run(self):
        with console_to(self._console_log()):
            return super().run()
