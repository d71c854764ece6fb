"""Write the synthetic NLI samples shipped in ``mt_nli/sample/``.

Deterministic (fixed seeds): rerun it only to change the sample, then commit the files. Texts are
invented from templates (nothing copied from XNLI or HeadlineCause) and labels are correlated
with words so a smoke training can move. Layouts follow the official files:

* ``XNLI-1.0/xnli.{dev,test}.tsv`` — the full XNLI header, ``language`` column (only ``ru`` rows
  here), ``gold_label``, ``pairID``; ``XNLI-MT-1.0/multinli/multinli.train.ru.tsv`` — header
  ``premise\thypo\tlabel`` with the spelling ``contradictory``; some texts hold stray ``"``;
* ``ru/{simple,full}/{train,val,test}.jsonl`` — HeadlineCause raw files with every field;
* ``nli/{train,validation,test}.jsonl`` — the generic task's premise/hypothesis/label.

    python plugins/mt-nli/tools/make_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "mt_nli" / "sample"
SIZES = {"train": 60, "val": 50, "test": 50}

NAMES = ["Борис", "Глеб", "Егор", "Иван", "Олег", "Павел", "Роман", "Семён"]
ACTS = [("купил", "хлеб"), ("прочитал", "книгу"), ("починил", "велосипед"), ("написал", "письмо"), ("нашёл", "ключи"), ("продал", "машину")]
TOWNS = ["Казани", "Перми", "Твери", "Туле", "Омске"]
XNLI_HEADER = [
    "language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
    "sentence1", "sentence2", "promptID", "pairID", "genre", "label1", "label2", "label3", "label4", "label5",
    "sentence1_tokenized", "sentence2_tokenized", "match",
]
EVENTS = [  # (cause headline, effect headline)
    ("ЦБ поднял ключевую ставку", "Банки повысили ставки по вкладам после решения ЦБ"),
    ("В Москве выпал рекордный снег", "Из-за снегопада в Москве встали пробки"),
    ("Завод остановил выпуск машин", "Цены на машины выросли после остановки завода"),
    ("Морозы ударили по урожаю", "Из-за морозов подорожали овощи"),
    ("Авиакомпания отменила рейсы", "Туристы застряли в аэропорту после отмены рейсов"),
    ("Нефть подешевела на бирже", "Рубль ослаб из-за падения нефти"),
    ("Метро закрыли на ремонт", "Автобусы переполнены из-за ремонта метро"),
    ("Сборная выиграла чемпионат", "Болельщики вышли на улицы после победы сборной"),
]
UNRELATED = ["Прогноз погоды на выходные", "В зоопарке родился слонёнок", "Открылась выставка картин", "Новый фильм вышел в прокат"]
REFUTE = "Власти опровергли слухи: {}"
PARAPHRASE = "Сообщается: {}"


def nli_pair(rng: random.Random) -> tuple[str, str, str]:
    name, (verb, obj), town = rng.choice(NAMES), rng.choice(ACTS), rng.choice(TOWNS)
    premise = f"{name} {verb} {obj} в {town}."
    label = rng.choice(["entailment", "neutral", "contradiction"])
    hypothesis = {
        "entailment": f"{name} {verb} {obj}.",
        "neutral": f"{name} {verb} {obj} вчера вечером.",
        "contradiction": f"{name} не {verb} {obj}.",
    }[label]
    if rng.random() < 0.15:  # stray quotes, as in the real files: the reader must not treat them as quoting
        premise = f'{name} сказал: "{verb} {obj} в {town}.'
    return premise, hypothesis, label


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(r) + "\n" for r in [header, *rows]), encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def xnli(rng: random.Random) -> None:
    train = []
    for _ in range(SIZES["train"]):
        premise, hypothesis, label = nli_pair(rng)
        train.append([premise, hypothesis, "contradictory" if label == "contradiction" else label])
    write_tsv(OUT / "XNLI-MT-1.0/multinli/multinli.train.ru.tsv", ["premise", "hypo", "label"], train)
    pair_id = 1
    for stem in ("dev", "test"):
        rows = []
        for prompt in range(SIZES["val" if stem == "dev" else "test"]):
            premise, hypothesis, label = nli_pair(rng)
            parse1 = parse2 = "(ROOT)"  # the real files hold parse trees; nothing reads them
            rows.append(["ru", label, parse1, parse2, parse1, parse2, premise, hypothesis, str(prompt + 1), str(pair_id),
                         "fiction", label, label, label, "", "", premise, hypothesis, "True"])
            pair_id += 1
        write_tsv(OUT / f"XNLI-1.0/xnli.{stem}.tsv", XNLI_HEADER, rows)


def headline_pair(rng: random.Random, scheme: str) -> tuple[str, str, int]:
    cause, effect = rng.choice(EVENTS)
    if scheme == "simple":
        label = rng.randrange(3)
        if label == 0:
            return cause, rng.choice(UNRELATED), 0
        return (cause, effect, 1) if label == 1 else (effect, cause, 2)
    label = rng.randrange(7)
    other = rng.choice([e for e in EVENTS if e[0] != cause])
    return {
        0: (rng.choice(UNRELATED), rng.choice(UNRELATED), 0),
        1: (cause, PARAPHRASE.format(cause.lower()), 1),
        2: (cause, other[0], 2),
        3: (cause, effect, 3),
        4: (effect, cause, 4),
        5: (cause, REFUTE.format(effect.lower()), 5),
        6: (REFUTE.format(effect.lower()), cause, 6),
    }[label]


def headline_cause(rng: random.Random, scheme: str) -> None:
    names = {"simple": ["not_cause", "left_right", "right_left"],
             "full": ["bad", "same", "rel", "left_right_cause", "right_left_cause", "left_right_refute", "right_left_refute"]}[scheme]
    row_id = 0
    for stem in SIZES:
        rows = []
        for _ in range(50):
            left, right, label = headline_pair(rng, scheme)
            stamp = 1600000000 + row_id * 3600
            rows.append({
                "left_url": f"https://news.example/{row_id}a", "right_url": f"https://news.example/{row_id}b",
                "left_title": left, "right_title": right, "left_timestamp": stamp, "right_timestamp": stamp + 60,
                "label": label, "result": names[label], "agreement": round(0.6 + 0.4 * rng.random(), 2),
                "id": f"ru_{scheme}_{row_id}", "has_link": rng.random() < 0.3,
            })
            row_id += 1
        write_jsonl(OUT / f"ru/{scheme}/{stem}.jsonl", rows)


def generic_nli(rng: random.Random) -> None:
    for split, n in {"train": SIZES["train"], "validation": SIZES["val"], "test": SIZES["test"]}.items():
        rows = []
        for _ in range(n):
            premise, hypothesis, label = nli_pair(rng)
            rows.append({"premise": premise, "hypothesis": hypothesis, **({"label": label} if split != "test" else {})})
        write_jsonl(OUT / f"nli/{split}.jsonl", rows)


def main() -> None:
    xnli(random.Random(3000))
    headline_cause(random.Random(3001), "simple")
    headline_cause(random.Random(3002), "full")
    generic_nli(random.Random(3003))


if __name__ == "__main__":
    main()
