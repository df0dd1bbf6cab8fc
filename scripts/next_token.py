"""The door to ``resumen.app.next_token`` (the code and its --help live there); no logic here."""

from resumen.app.next_token import cli

if __name__ == "__main__":
    cli()
