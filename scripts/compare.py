"""The door to ``resumen.app.compare`` (the code and its --help live there); no logic here."""

from resumen.app.compare import cli

if __name__ == "__main__":
    cli()
