"""Every link in the README and docs/ resolves, and every command they show parses against the code."""

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands(page: Path) -> list[list[str]]:
    """The ``scripts/*.py`` commands in a page's bash blocks, as argument lists from the script on."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command, comments=True)
            script = next((i for i, word in enumerate(words) if re.fullmatch(r"scripts/\w+\.py", word)), None)
            if script is not None:
                commands.append(words[script:])
    return commands


COMMANDS = [(page.relative_to(ROOT), command) for page in PAGES for command in shown_commands(page)]


def test_readme_is_the_short_path():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def script_help(script: str, subcommand: str | None) -> str:
    import importlib

    from resumen.app.cli_support import main_guard

    module = importlib.import_module("resumen.app." + script.removesuffix(".py").split("/")[-1])  # the door's code
    main = module.cli_main if hasattr(module, "cli_main") else module.main
    output = io.StringIO()
    with contextlib.redirect_stdout(output), pytest.raises(SystemExit):
        main_guard(main, [subcommand, "--help"] if subcommand else ["--help"])
    return output.getvalue()


@pytest.mark.parametrize("page,command", COMMANDS, ids=[f"{p.name}:{' '.join(c)[:60]}" for p, c in COMMANDS])
def test_shown_commands_parse(page, command, monkeypatch):
    script, args = command[0], command[1:]
    assert (ROOT / script).is_file()
    monkeypatch.chdir(ROOT)
    if script == "scripts/train.py":
        configs = [args[i + 1] for i, arg in enumerate(args) if arg == "--config"]
        if all((ROOT / config).is_file() for config in configs):
            from resumen.app.train import cli_main

            with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exit_info:
                cli_main([*args, "--print_config"])
            assert exit_info.value.code == 0, " ".join(command)
            return
    help_text = script_help(script, args[0] if script == "scripts/train.py" else None)
    for option in (arg.split("=")[0] for arg in args if arg.startswith("--")):
        assert option in help_text, f"{' '.join(command)}: {option} is not an option of {script}"
