"""The door to ``resumen.app.make_demo_data`` (the code and its --help live there); no logic here."""

from resumen.app.make_demo_data import cli

if __name__ == "__main__":
    cli()
