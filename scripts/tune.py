"""The door to ``resumen.app.tune`` (the code and its --help live there); no logic here."""

from resumen.app.tune import cli

if __name__ == "__main__":
    cli()
