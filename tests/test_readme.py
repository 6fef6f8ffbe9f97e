"""The README's set-up commands are the ones CI runs."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())


def test_readme_opens_with_main_job_and_test_commands():
    commands = readme_commands()
    assert commands[0].endswith("hf-vq train")
    assert "pytest" in commands[1]
    for command in commands[:2]:
        assert "-c constraints.txt" in command
    assert "torch==2.14.1" in (REPO / "constraints.txt").read_text()


def test_ci_runs_the_readme_test_command():
    assert readme_commands()[1] in (REPO / ".ci/run").read_text()
