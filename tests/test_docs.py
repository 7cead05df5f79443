"""The docs cannot drift from the CLI: every `scaler ...` command in README.md and docs/*.md
parses against the real command line, and every relative link points to a file.

Commands are taken from fenced shell blocks (untagged, bash, sh, shell, console; a `$ ` prompt,
a trailing `# comment` and `\\` continuations are handled) and from inline code spans that start
with `scaler `. Each is split with shlex and its subcommand path resolved in the typer app.

- A command written as it would be typed is parsed by click's ``make_context`` on the leaf
  command, without running it: unknown options, missing values, bad choices and values of the
  wrong type fail.
- A synopsis (a token `...`, `[`, `]`, `|`, `<`, or an upper-case metavariable such as `STUDY`,
  `FILE` or `N`) cannot be parsed as typed; only its command path and that every `--option` it
  names exists are checked.
- Options removed in 0.6 may not appear in any command.
- `--help` runs for each distinct command path; `scaler info` and `scaler family` commands
  without files run for real (they are cheap).
"""

from __future__ import annotations

import contextlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from scaler.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
# Removed in 0.6 (CHANGELOG.md): the docs must not show them as working.
REMOVED = {"--base-resolution", "--cost-resolution"}
METAVAR = re.compile(r"^[A-Z][A-Z0-9_]*$")
SYNOPSIS_MARKS = ("...", "…", "[", "]", "|", "<", ">")
INLINE = re.compile(r"(?<!`)`(scaler [^`\n]+)`(?!`)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@dataclass(frozen=True)
class Command:
    file: str
    line: int
    text: str
    inline: bool = False

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _fenced(path: Path) -> list[Command]:
    """`scaler ...` lines of the shell blocks, continuations joined, prompts stripped."""
    found: list[Command] = []
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip().lower() if fence is None else None
            pending = None
            continue
        if fence is None or fence not in SHELL_FENCES:
            continue
        if pending is not None:
            start, text = pending
            text += " " + stripped.rstrip("\\").strip()
            pending = (start, text) if stripped.endswith("\\") else None
            if pending is None:
                found.append(Command(_rel(path), start, text))
            continue
        line = stripped[2:] if stripped.startswith("$ ") else stripped
        line = re.sub(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+", "", line)  # VAR=value prefixes
        if not line.startswith("scaler "):
            continue
        if line.endswith("\\"):
            pending = (number, line[:-1].strip())
        else:
            found.append(Command(_rel(path), number, line))
    return found


def _inline(path: Path) -> list[Command]:
    """Inline code spans `scaler ...` outside fenced blocks."""
    found: list[Command] = []
    in_fence = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.strip().startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence:
            found += [Command(_rel(path), number, m.group(1), True) for m in INLINE.finditer(raw)]
    return found


def _commands() -> list[Command]:
    return [c for path in DOCS for c in (*_fenced(path), *_inline(path))]


COMMANDS = _commands()
ROOT_COMMAND = typer.main.get_command(app)


def _tokens(text: str) -> list[str]:
    return shlex.split(text, comments=True)


def _is_synopsis(tokens: list[str]) -> bool:
    return any(
        any(mark in t for mark in SYNOPSIS_MARKS) or METAVAR.match(t) is not None for t in tokens
    )


def _resolve(tokens: list[str]):
    """(leaf command, its path, the remaining arguments) for `scaler A B ... args`."""
    assert tokens[:1] == ["scaler"], tokens
    command, path, rest = ROOT_COMMAND, ["scaler"], tokens[1:]
    while hasattr(command, "commands"):
        if not rest or rest[0].startswith("-") or _is_synopsis(rest[:1]):
            return command, path, rest
        name = rest[0]
        assert name in command.commands, (
            f"{' '.join(path)} has no command {name!r}: valid are {', '.join(command.commands)}"
        )
        command, path, rest = command.commands[name], [*path, name], rest[1:]
    return command, path, rest


def _options(command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(param.opts)
        names.update(getattr(param, "secondary_opts", ()))
    return names


def check(text: str, inline: bool = False) -> list[str]:
    """Check one documented command; returns its command path (raises on a mismatch).

    An inline span of a bare command path (`scaler confirm`) names the command: only its path
    is checked.
    """
    tokens = _tokens(text)
    command, path, rest = _resolve(tokens)
    if inline and not rest:
        return path
    options = _options(command)
    named = [m.group(0) for t in rest for m in re.finditer(r"(?<![\w-])--[\w-]+", t)]
    removed = sorted(REMOVED.intersection(named))
    assert not removed, f"{text!r} uses options removed in 0.6: {', '.join(removed)}"
    # 0.1's `--resolution N` in pixels is `--pixels N`
    for option, value in zip(rest, rest[1:], strict=False):
        assert not (option == "--resolution" and value.isdigit() and int(value) >= 8), (
            f"{text!r}: --resolution is a multiplier since 0.6; use --pixels {value}"
        )
    if _is_synopsis(rest):
        unknown = [o for o in named if o not in options]
        assert not unknown, f"{' '.join(path)} has no option {', '.join(unknown)}"
        return path
    if hasattr(command, "commands"):  # a group given no subcommand: only --help makes sense
        assert rest in ([], ["--help"]), f"{' '.join(path)} needs a subcommand"
        return path
    if "--help" in rest or "--version" in rest:
        return path
    ctx = command.make_context(path[-1], list(rest), resilient_parsing=False)
    for param in command.params:
        allowed = _choices(param)
        value = ctx.params.get(param.name)
        if allowed and isinstance(value, str) and value in rest:
            assert any(re.fullmatch(a, value) for a in allowed), (
                f"{param.opts[0]} {value!r}: valid are {', '.join(allowed)}"
            )
    return path


def _choices(param) -> list[str]:
    """The values an option's help lists as `a | b | c` (typer checks them in the library, not
    in click): `--proxy`, `--sampler`, `--device`, `--to`, ...; `N` in one stands for a number."""
    text = getattr(param, "help", None) or ""
    if "|" not in text or "comma-separated" in text:
        return []
    text = re.sub(r"\([^)]*\)", "", text.split(":")[-1] if ": " in text else text)
    words = [w.strip().rstrip(".") for w in text.split("|")]
    words = [w.split()[-1] if i == 0 else w.split()[0] for i, w in enumerate(words) if w.split()]
    return [re.escape(w).replace("N", r"\d+") for w in words]


@pytest.mark.parametrize("doc", COMMANDS, ids=str)
def test_documented_command_parses(doc: Command) -> None:
    try:
        check(doc.text, doc.inline)
    except AssertionError:
        raise
    except Exception as e:  # click's usage errors, from whichever click typer uses
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        pytest.fail(f"{doc}: `{doc.text}`: {message}")


def test_docs_have_commands() -> None:
    """The extraction finds the README's main job and something in every docs page."""
    texts = [c.text for c in COMMANDS]
    assert any(t.startswith("scaler search --budget 2x") for t in texts)
    files = {c.file for c in COMMANDS}
    assert "README.md" in files


@pytest.mark.parametrize(
    "text",
    [
        "scaler search --no-such-option",
        "scaler search --budget",  # a missing value
        "scaler nosuchcommand --budget 2x",
        "scaler info --phi two",  # the wrong type
        "scaler search --proxy fast",  # not a preset
        "scaler search --device gpu",  # not a device
        "scaler search --cost-resolution 224",  # removed in 0.6
        "scaler info --resolution 64",  # 0.1's pixels: --pixels 64
        "scaler train --json out.json",  # 0.1's file: --out out.json
        "scaler confirm STUDY [--no-such-option N]",  # a synopsis names an unknown option
        "scaler sweep width-by-baseline --no-such-option",
    ],
)
def test_checker_catches_drift(text: str) -> None:
    try:
        check(text)
    except AssertionError:
        return
    except Exception as e:
        # click's UsageError family, from whichever click typer uses (matched by name)
        assert any(c.__name__ == "UsageError" for c in type(e).__mro__), repr(e)
        return
    pytest.fail(f"the checker accepted {text!r}")


def test_extraction_handles_prompts_comments_and_continuations(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `scaler info --preset b0` first.\n\n"
        "```bash\n"
        "$ scaler family --alpha 1.2 \\\n"
        "    --beta 1.1   # a comment\n"
        "SCALER_STORAGE=sqlite:///x.db scaler studies\n"
        "```\n\n"
        "```python\nscaler search --no-such-option\n```\n",
        encoding="utf-8",
    )
    fenced, inline = _fenced(page), _inline(page)
    assert [(c.line, c.text) for c in fenced] == [
        (4, "scaler family --alpha 1.2 --beta 1.1   # a comment"),
        (6, "scaler studies"),
    ]
    assert [(c.line, c.text) for c in inline] == [(1, "scaler info --preset b0")]
    for c in (*fenced, *inline):
        check(c.text, c.inline)


def _paths() -> list[tuple[str, ...]]:
    paths = set()
    for c in COMMANDS:
        with contextlib.suppress(AssertionError, ValueError):  # the parse test names it
            paths.add(tuple(_resolve(_tokens(c.text))[1]))
    return sorted(paths)


@pytest.mark.parametrize("path", _paths(), ids=" ".join)
def test_help_of_each_documented_command(cli, path: tuple[str, ...]) -> None:
    code, out, _ = cli(*path[1:], "--help")
    assert code == 0 and "Usage" in out


CHEAP = [
    c
    for c in COMMANDS
    if _tokens(c.text)[1:2] in (["info"], ["family"])
    and not _is_synopsis(_tokens(c.text))
    and not (c.inline and len(_tokens(c.text)) == 2)
    and "--coefficients" not in c.text
    and "--compare-official" not in c.text
]


@pytest.mark.parametrize("doc", CHEAP, ids=str)
def test_cheap_commands_run(cli, doc: Command) -> None:
    code, out, err = cli(*_tokens(doc.text)[1:])
    assert code == 0, f"{doc}: {err}"
    assert out.strip()


def _links() -> list[tuple[str, int, str]]:
    found = []
    for path in DOCS:
        in_fence = False
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if raw.strip().startswith("```"):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            for target in LINK.findall(raw):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue
                found.append((_rel(path), number, target))
    return found


@pytest.mark.parametrize("link", _links(), ids=lambda x: f"{x[0]}:{x[1]}:{x[2]}")
def test_relative_links_exist(link: tuple[str, int, str]) -> None:
    file, line, target = link
    path, _, anchor = target.partition("#")
    resolved = (ROOT / file).parent / path if path else ROOT / file
    assert resolved.exists(), f"{file}:{line}: {target} does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{file}:{line}: {target}: no such heading"


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found, in_fence = set(), False
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*$", raw)):
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
    return found


def test_anchors_follow_github() -> None:
    page = ROOT / "docs" / "bases.md"
    assert "tables-3-and-7-of-the-paper-scaler-sweep-compare" in _anchors(page)
