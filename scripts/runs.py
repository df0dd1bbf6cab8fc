"""The door to ``resumen.app.runs`` (the code and its --help live there); no logic here."""

from resumen.app.runs import cli

if __name__ == "__main__":
    cli()
