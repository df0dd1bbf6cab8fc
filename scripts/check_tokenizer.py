"""The door to ``resumen.app.check_tokenizer`` (the code and its --help live there); no logic here."""

from resumen.app.check_tokenizer import cli

if __name__ == "__main__":
    cli()
