"""The shipped recipes, by name: list them, copy one out to edit, and resolve ``--config NAME`` (torchtune's
``tune ls`` / ``tune cp`` are the model).

    resumen-recipes list                            # name and first line of each shipped recipe
    resumen-recipes copy demo my_demo.yaml          # a copy to edit; resumen-train fit --config my_demo.yaml
    resumen-train fit --config demo                 # a shipped recipe by name (a file of that name wins)
    resumen-train fit --config mlsum_flan_t5_small --config trainer/ddp
"""

from __future__ import annotations

import argparse
import re
import shutil
from importlib.resources import files
from pathlib import Path

from resumen.core.errors import ResumenError


def recipes() -> dict[str, Path]:
    """Every shipped recipe: its name (the path under ``configs/`` without ``.yaml``) -> its file."""
    root = Path(str(files("resumen.configs")))
    return {str(path.relative_to(root).with_suffix("")): path for path in sorted(root.rglob("*.yaml"))}


def describe(path: Path) -> str:
    """A recipe's first comment line: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def resolve(value: str) -> str:
    """A ``--config`` value: an existing file (or an inline YAML string) as it is, else the shipped recipe it names."""
    if Path(value).expanduser().exists() or "\n" in value or ":" in value:
        return value
    shipped = recipes()
    name = value[:-5] if value.endswith(".yaml") else value
    name = name[len("configs/") :] if name.startswith("configs/") else name
    if name in shipped:
        return str(shipped[name])
    raise ResumenError(f"--config {value}: no such file, and no shipped recipe of that name (shipped: {', '.join(shipped)}; resumen-recipes list).")


# a class path as 0.1 wrote it, before everything moved under the resumen name
OLD_CLASS_PATH = re.compile(r"class_path:\s*[\"']?((?:lightning_modules|datamodules|core)\.[\w.]+)")


def checked(value: str) -> str:
    """``value``, resolved; a config file written for 0.1 (a class path from before the ``resumen`` name, a decoding
    option from before ``model.generation``) is one line naming the new key, the file read once for both."""
    resolved = resolve(value)
    path = Path(resolved).expanduser()
    if path.is_file() and path.stat().st_size < 1_000_000:
        text = path.read_text(encoding="utf-8", errors="replace")
        old = OLD_CLASS_PATH.search(text)
        if old:
            raise ResumenError(f"{value} names class_path {old.group(1)}: since resumen 0.2.0 it is resumen.{old.group(1)} (edit the file).")
        moved = moved_decoding_options(text)
        if moved:
            raise ResumenError(
                f"{value}: model.{moved[0]} is now model.generation.{moved[0]} (the decoding options are one group since resumen 0.2.0): "
                f"move {', '.join(moved)} under model: generation:."
            )
    return resolved


def moved_decoding_options(text: str) -> list[str]:
    """The decoding options a config's ``model:`` section sets directly, as 0.1 did (now under ``generation:``)."""
    import yaml

    from resumen.core.generation import SUMMARY_OPTIONS

    try:
        model = (yaml.safe_load(text) or {}).get("model")
    except (yaml.YAMLError, AttributeError):
        return []  # the CLI's own parser says what is wrong with it
    return sorted(set(model) & set(SUMMARY_OPTIONS)) if isinstance(model, dict) else []


def with_recipes(argv: list[str]) -> list[str]:
    """The command line with each ``--config``/``-c`` value resolved (``--config demo`` -> the shipped file)."""
    resolved, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "-c") and i + 1 < len(argv):
            resolved += [arg, checked(argv[i + 1])]
            i += 2
            continue
        resolved.append(f"--config={checked(arg.split('=', 1)[1])}" if arg.startswith("--config=") else arg)
        i += 1
    return resolved


def copy(name: str, destination: str | None, force: bool = False) -> Path:
    """Copy the shipped recipe ``name`` to ``destination`` (default: ``<name>.yaml`` here) without overwriting."""
    shipped = recipes()
    if name not in shipped:
        raise ResumenError(f"no shipped recipe named '{name}' (shipped: {', '.join(shipped)}).")
    target = Path(destination) if destination else Path(Path(name).name + ".yaml")
    if target.is_dir():
        target = target / (Path(name).name + ".yaml")
    if target.exists() and not force:
        raise ResumenError(f"{target} already exists: choose another name, or pass --force to overwrite it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped[name], target)
    return target


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="resumen-recipes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="name and purpose of each shipped recipe")
    copying = commands.add_parser("copy", help="copy a shipped recipe to edit it")
    copying.add_argument("name", help="a name from `resumen-recipes list`")
    copying.add_argument("destination", nargs="?", help="file or folder (default: <name>.yaml in this folder)")
    copying.add_argument("--force", action="store_true", help="overwrite the destination if it exists")
    args = parser.parse_args(argv)
    if args.command == "copy":
        target = copy(args.name, args.destination, args.force)
        print(f"{args.name} copied to {target}: edit it, then resumen-train fit --config {target}")
        return [str(target)]
    lines = [f"{name:<22} {describe(path)}" for name, path in recipes().items()]
    print("\n".join(lines))
    return lines


def cli() -> None:
    """Console entry point (resumen-recipes): one-line errors, exit code 2."""
    from resumen.app.cli_support import main_guard

    main_guard(main)


if __name__ == "__main__":
    cli()
