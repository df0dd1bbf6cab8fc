"""The door to ``resumen.app.export`` (the code and its --help live there); no logic here."""

from resumen.app.export import cli

if __name__ == "__main__":
    cli()
