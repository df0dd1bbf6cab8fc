"""The door to ``resumen.app.train`` (the code and its --help live there); no logic here."""

from resumen.app.train import cli

if __name__ == "__main__":
    cli()
