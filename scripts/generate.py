"""The door to ``resumen.app.generate`` (the code and its --help live there); no logic here."""

from resumen.app.generate import cli

if __name__ == "__main__":
    cli()
