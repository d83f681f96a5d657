"""The README cannot drift: every command in a ```console block of README.md and bench/README.md runs
against a temporary copy of the bundled corpus, and what it prints must match what the README shows.

The convention (also in the README's "README examples are tested"):
- ```console blocks are tested: a line `$ command` is run with bash in the copy (cwd), and the lines
  after it, up to the next `$ ` line or the end of the block, are its expected stdout.
- In expected output, a line that is only `...` stands for any number of lines (also none), and `...`
  inside a line for any text within that line. Trailing spaces and blank lines at the end are ignored.
- A command with a trailing `# long: <why>` comment (a benchmark run) is shown but not run.
- ```bash (and other) blocks are illustrations and are not run.

When an example no longer matches, the failure shows a diff. `RAG_UPDATE_README=1 pytest tests/test_readme.py`
writes the new output into the README in place of the old one (put back any `...` you want kept).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "bench" / "README.md"]
LONG = re.compile(r"\s#\s*long:")
TIMEOUT = 600


@dataclass
class Command:
    path: Path
    line: int  # 1-based line of the `$ ` line
    cmd: str
    expected: list[str] = field(default_factory=list)

    @property
    def long(self) -> bool:
        return bool(LONG.search(self.cmd))


def commands(path: Path) -> list[Command]:
    """Every `$ command` of every ```console block in a Markdown file, with its expected output."""
    out: list[Command] = []
    fenced, console, current = False, False, None
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
            console, current = fenced and line.strip() == "```console", None
        elif not console:
            continue
        elif line.startswith("$ "):
            current = Command(path, i, line[2:].strip())
            out.append(current)
        elif current is not None:
            current.expected.append(line)
        else:
            raise ValueError(f"{path.name}:{i}: a console block must start with a `$ command` line")
    return out


def _line_matches(pattern: str, line: str) -> bool:
    if "..." not in pattern:
        return pattern == line
    return re.fullmatch(".*?".join(re.escape(p) for p in pattern.split("...")), line) is not None


def matches(expected: list[str], actual: list[str]) -> bool:
    """Expected lines against actual ones, `...` lines standing for any run of lines."""
    expected, actual = _trim(expected), _trim(actual)
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(expected):
                memo[i, j] = j == len(actual)
            elif expected[i].strip() == "...":
                memo[i, j] = any(go(i + 1, jj) for jj in range(j, len(actual) + 1))
            else:
                memo[i, j] = j < len(actual) and _line_matches(expected[i], actual[j]) and go(i + 1, j + 1)
        return memo[i, j]

    return go(0, 0)


def _trim(lines: list[str]) -> list[str]:
    lines = [x.rstrip() for x in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# ---------------------------------------------------------------- fast: the convention itself


def test_elisions_match_what_they_stand_for_and_nothing_else():
    assert matches(["indexed 1 document in ...s"], ["indexed 1 document in 19.0s"])
    assert matches(["Answer: 2015", "...", "Sources:"], ["Answer: 2015", "", "a", "b", "Sources:", ""])
    assert matches(["a", "...", "b"], ["a", "b"])
    assert not matches(["Answer: 2015"], ["Answer: 2016"])
    assert not matches(["a ... c"], ["a b"]) and not matches(["a", "b"], ["a", "b", "c"])
    assert matches(["..."], ["x", "y"]) and matches(["..."], [])


def test_every_console_command_is_parsed_and_benchmarks_are_marked_long():
    found = {p: commands(p) for p in READMES}
    readme = found[READMES[0]]
    assert any(c.cmd.startswith("rag index") for c in readme) and any("--explain" in c.cmd for c in readme)
    assert all(c.expected for c in readme if not c.long), "a tested command shows no output"
    assert all(c.long for c in found[READMES[1]] if "bench/" in c.cmd), "benchmark runs must be `# long:`"


# ---------------------------------------------------------------- real: run them


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A copy of what the commands read (corpus, prompts, gold set); the repo's index/ is never touched."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "corpus", root / "corpus")
    shutil.copytree(ROOT / "prompts", root / "prompts")
    (root / "eval").mkdir()
    for name in ("gold.jsonl", "baseline.json"):
        shutil.copy(ROOT / "eval" / name, root / "eval" / name)
    return root


def _run(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)  # this checkout's rag/, whatever the venv's editable install points at
    env["COLUMNS"] = "100"
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def check(cmds: list[Command], cwd: Path) -> tuple[int, list[str], list[tuple[Command, list[str]]]]:
    """Run the commands in order in cwd: how many ran, the failures (with diffs), and the new outputs."""
    failures, updates, ran = [], [], 0
    for c in cmds:
        if c.long:
            continue
        done = _run(c.cmd, cwd)
        ran += 1
        where = f"{c.path.name}:{c.line}: $ {c.cmd}"
        actual = done.stdout.splitlines()
        if done.returncode != 0:
            failures.append(f"{where}\n  exit {done.returncode}; stderr:\n{done.stderr[-2000:]}")
        elif not matches(c.expected, actual):
            diff = "\n".join(difflib.unified_diff(_trim(c.expected), _trim(actual), "README shows", "command printed",
                                                  lineterm=""))
            failures.append(f"{where}\n{diff}")
            updates.append((c, _trim(actual)))
    return ran, failures, updates


def test_a_changed_output_fails_with_a_diff_and_update_rewrites_it(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n```console\n$ echo hello; echo world\nhello\n...\n$ printf 'a b\\nc\\n'\na ...\nd\n```\n"
                      "\n```bash\n$ false\n```\n\n```console\n$ sleep 999  # long: never run\n```\n")
    cmds = commands(readme)
    assert [c.cmd for c in cmds] == ["echo hello; echo world", "printf 'a b\\nc\\n'", "sleep 999  # long: never run"]
    ran, failures, updates = check(cmds, tmp_path)
    assert ran == 2 and len(failures) == 1 and "-d" in failures[0] and "+c" in failures[0]
    _update(updates)
    assert "$ printf 'a b\\nc\\n'\na b\nc\n```" in readme.read_text()
    assert check(commands(readme), tmp_path)[1] == []


@pytest.mark.real_model
def test_readme_commands_print_what_the_readme_shows(workspace):
    ran, failures, updates = check([c for p in READMES for c in commands(p)], workspace)
    if updates and os.environ.get("RAG_UPDATE_README") == "1":
        _update(updates)
    assert ran >= 3, "the README's console commands were not run"
    assert not failures, (f"{len(failures)} README example(s) no longer match "
                          "(RAG_UPDATE_README=1 rewrites them):\n\n" + "\n\n".join(failures))


def _update(updates: list[tuple[Command, list[str]]]) -> None:
    """Put each command's actual output in place of its expected lines (bottom up, so line numbers hold)."""
    for path in {c.path for c, _ in updates}:
        lines = path.read_text(encoding="utf-8").splitlines()
        for c, actual in sorted(((c, a) for c, a in updates if c.path == path), key=lambda x: -x[0].line):
            lines[c.line:c.line + len(c.expected)] = actual
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
