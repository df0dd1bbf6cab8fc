"""The door to ``resumen.app.summarize`` (the code and its --help live there); no logic here."""

from resumen.app.summarize import cli

if __name__ == "__main__":
    cli()
