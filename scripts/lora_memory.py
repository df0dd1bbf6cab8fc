"""The door to ``resumen.app.lora_memory`` (the code and its --help live there); no logic here."""

from resumen.app.lora_memory import cli

if __name__ == "__main__":
    cli()
