"""resumen: instruction-fine-tune encoder-decoders to summarise Spanish news with PyTorch Lightning.

One import namespace (docs/layout.md): ``resumen.core`` (the shared floor), ``resumen.datamodules`` and
``resumen.lightning_modules`` (side by side on it), ``resumen.app`` (the commands, the server, the CLI),
``resumen.configs`` (the shipped recipes, as package data).
"""

__version__ = "0.2.0"
