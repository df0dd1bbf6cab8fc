"""The door to ``resumen.app.tune_generation`` (the code and its --help live there); no logic here."""

from resumen.app.tune_generation import cli

if __name__ == "__main__":
    cli()
