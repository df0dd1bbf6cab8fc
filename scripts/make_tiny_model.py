"""The door to ``resumen.app.make_tiny_model`` (the code and its --help live there); no logic here."""

from resumen.app.make_tiny_model import cli

if __name__ == "__main__":
    cli()
