"""The door to ``resumen.app.serve`` (the code and its --help live there); no logic here."""

from resumen.app.serve import cli

if __name__ == "__main__":
    cli()
