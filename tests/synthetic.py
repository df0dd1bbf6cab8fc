"""Deterministic synthetic Spanish data for tests: the summary is the article's first sentence."""

from __future__ import annotations

import json
import random
from pathlib import Path

SUBJECTS = ["El alcalde", "La ministra", "El equipo", "La empresa", "El museo", "La universidad", "El gobierno", "La policía"]
VERBS = ["anunció", "presentó", "celebró", "aprobó", "rechazó", "inauguró", "investigó", "defendió"]
OBJECTS = ["un plan nuevo", "la reforma", "el acuerdo", "una exposición", "el presupuesto", "la campaña", "un estudio", "el proyecto"]
PLACES = ["en Madrid", "en Sevilla", "en Bilbao", "en Valencia", "en Málaga", "en Zaragoza", "en Granada", "en Murcia"]
FILLER = [
    "Los vecinos siguieron la noticia con interés.",
    "La oposición pidió más información.",
    "Los detalles se conocerán la próxima semana.",
    "Varios expertos valoraron la decisión.",
    "El anuncio se hizo por la mañana.",
    "La medida entrará en vigor en otoño.",
]


def first_sentence_rows(count: int, seed: int = 0, subjects: list[str] = SUBJECTS, places: list[str] = PLACES) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        first = f"{rng.choice(subjects)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(places)}."
        rest = " ".join(rng.sample(FILLER, 2))
        rows.append({"text": f"{first} {rest}", "summary": first})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


ENYE_SUBJECTS = ["El niño", "La compañía", "El señor Muñoz", "La montaña", "El compañero", "La señora Peña"]
ENYE_PLACES = ["en España", "en Logroño", "en A Coruña", "en Cataluña", "en Peñíscola", "en Ourense"]


def enye_rows(count: int, seed: int = 0) -> list[dict[str, str]]:
    """Like :func:`first_sentence_rows`, but every summary holds "ñ" (T5's vocabulary cannot write it)."""
    return first_sentence_rows(count, seed, ENYE_SUBJECTS, ENYE_PLACES)
