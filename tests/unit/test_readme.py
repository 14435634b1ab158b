import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands_after(heading: str, text: str) -> list[str]:
    section = text.split(heading, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_holds_one_run_and_one_test_command_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    run = _commands_after("## Run it (fresh machine", readme)
    test = _commands_after("## Test it (fresh machine", readme)
    assert len(run) == 1 and "salesrail up" in run[0]
    assert len(test) == 1 and "pytest" in test[0]
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == test
