"""The door to ``resumen.app.translate`` (the code and its --help live there); no logic here."""

from resumen.app.translate import cli

if __name__ == "__main__":
    cli()
