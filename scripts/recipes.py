"""The door to ``resumen.app.recipes`` (the code and its --help live there); no logic here."""

from resumen.app.recipes import cli

if __name__ == "__main__":
    cli()
