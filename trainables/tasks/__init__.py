"""The tasks the tuner fine-tunes for, one file each (see `trainables.tasks.base.Task`).

Adding a task: a new file with a `Task` subclass, and one line in `TASKS` below.
"""

from __future__ import annotations

from trainables.tasks.base import Task
from trainables.tasks.classification import SequenceClassification
from trainables.tasks.language_model import CausalLanguageModel
from trainables.tasks.question_answering import QuestionAnswering
from trainables.tasks.summarization import Summarization
from trainables.tasks.tagging import TokenClassification
from trainables.tasks.translation import Translation

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        SequenceClassification(),
        TokenClassification(),
        QuestionAnswering(),
        Summarization(),
        Translation(),
        CausalLanguageModel(),
    )
}


def task_named(name: str) -> Task:
    """The registered task of that ``task.type``.

    Raises:
        KeyError: no task of that name (the sweep file's schema refuses it first).
    """
    return TASKS[name]
