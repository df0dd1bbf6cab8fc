"""The shipped recipes (package data of ``resumen.configs``): ``resumen-recipes list`` names them."""
