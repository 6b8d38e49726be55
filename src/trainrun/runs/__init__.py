"""The runs half: every training run kept on record, for any Python script.

Its flow, one package a step: a script declares its ``flags`` (defaults, a flags file and
the command line resolved into values); ``launch`` starts the script as a training run
(folder, source snapshot, child process, live output, exit status); ``record`` owns the
run folder on disk (its files, atomic writes, the lock, which folders are runs);
``active`` is the script's side of a run (log_metrics, write_evaluation, ...); ``store``
lists and looks after runs through an SQLite index that is only a cache, with its filter
language; ``report`` turns runs into pages. ``tuning`` and ``tensorboard`` sit on top.

Nothing here imports torch or the estimator half.
"""

from __future__ import annotations


def __getattr__(name: str) -> object:
    # `trainrun.runs.active.run_dir()` after a plain `import trainrun`: import on first use
    from trainrun import _submodule

    return _submodule(__name__, name)
