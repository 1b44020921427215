"""The awscli labelled set of `bench.bench_retrieval`: the AWS CLI's example pages.

`awscli/examples/<service>/<command>.rst` of the `awscli` wheel (installed into this
interpreter with `pip install --no-deps` when missing; nothing of it is imported), every
page of `AWSCLI_SERVICES`, and the questions of `bench/data/awscli_questions.tsv`.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AWSCLI_SERVICES", "AWSCLI_VERSION", "LabelledSet", "awscli_set"]

AWSCLI_VERSION = "1.46.2"
AWSCLI_SERVICES = (
    "secretsmanager",
    "sqs",
    "sns",
    "dynamodb",
    "logs",
    "kms",
    "ecr",
    "s3",
    "lambda",
    "sts",
    "cloudwatch",
)
_QUESTIONS = Path(__file__).parent / "data" / "awscli_questions.tsv"


@dataclass(frozen=True, slots=True)
class LabelledSet:
    """Documents, and questions each labelled with the index of the document answering it."""

    name: str
    documents: list[tuple[str, str]]
    questions: list[tuple[str, str, int]]
    """(kind, question, document index)"""


def _awscli_examples() -> Path:
    try:
        dist = importlib.metadata.distribution("awscli")
    except importlib.metadata.PackageNotFoundError:
        subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                f"awscli=={AWSCLI_VERSION}",
            ],
            check=True,
        )
        dist = importlib.metadata.distribution("awscli")
    return Path(str(dist.locate_file("awscli/examples")))


def awscli_set() -> LabelledSet:
    """The AWS CLI example pages of `AWSCLI_SERVICES` and the labelled questions."""
    root = _awscli_examples()
    pages = [
        path
        for service in AWSCLI_SERVICES
        for path in sorted((root / service).glob("*.rst"))
        if not path.name.startswith("_")
    ]
    index = {f"{p.parent.name}/{p.name}": n for n, p in enumerate(pages)}
    documents = [
        (f"aws {p.parent.name} {p.stem}", p.read_text(encoding="utf-8").strip()) for p in pages
    ]
    questions = []
    for line in _QUESTIONS.read_text(encoding="utf-8").splitlines()[1:]:
        if line.startswith("#") or line.startswith("kind\t") or not line.strip():
            continue
        kind, question, page = line.split("\t")
        questions.append((kind, question, index[page]))
    return LabelledSet("awscli", documents, questions)
