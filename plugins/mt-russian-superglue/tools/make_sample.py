"""Write the synthetic Russian SuperGLUE sample shipped in ``mt_russian_superglue/sample/``.

Deterministic (fixed seeds): rerun it only to change the sample, then commit the files. The texts
are invented from templates — nothing is copied from the real datasets — and the labels are
correlated with words (``действительно`` / ``никогда не``, ``не`` in the hypothesis, the verb of
the premise) so that a smoke training can move. Layout and label forms follow the official
files: ``<Task>/train.jsonl, val.jsonl, test.jsonl`` (test without labels), ``LiDiRus/LiDiRus.jsonl``
(labelled), a byte-order mark at the start of two files.

    python plugins/mt-russian-superglue/tools/make_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "mt_russian_superglue" / "sample"
SIZES = {"train": 80, "val": 50, "test": 50}
BOM_FILES = {("DaNetQA", "train"), ("RCB", "val")}

PLACES = ["озеро Ясное", "река Светлянка", "посёлок Берёзовка", "гора Каменная", "село Липки", "парк Дубрава", "остров Тихий", "город Новоборск"]
FACTS = ["славится рыбалкой", "лежит на севере", "имеет свой музей", "видна с трассы", "открыта летом", "носит старое имя", "входит в заповедник", "известна садами"]
NAMES = ["Борис", "Глеб", "Егор", "Иван", "Олег", "Павел", "Роман", "Семён", "Фёдор", "Тимур"]  # past-tense verbs agree
ACTS = [("купил", "хлеб"), ("прочитал", "книгу"), ("починил", "велосипед"), ("написал", "письмо"), ("нашёл", "ключи"), ("помыл", "окно"), ("продал", "машину"), ("испёк", "пирог")]
TOWNS = ["Казани", "Перми", "Твери", "Туле", "Омске", "Самаре"]
PAIRS = [
    ("Пошёл сильный дождь.", "Улицы стали мокрыми."),
    ("Мальчик разбил окно.", "Родители его отругали."),
    ("Я забыл зонт дома.", "Я промок по дороге."),
    ("Чайник закипел.", "Я заварил чай."),
    ("Девочка потеряла ключи.", "Она не смогла открыть дверь."),
    ("Выпал снег.", "Дети пошли кататься на санках."),
    ("Студент не спал всю ночь.", "Утром он чувствовал усталость."),
    ("В магазине началась распродажа.", "Там собралась очередь."),
    ("Телефон разрядился.", "Я не смог позвонить."),
    ("Собака громко залаяла.", "Кошка убежала."),
    ("Повар пересолил суп.", "Гости не доели обед."),
    ("Отключили свет.", "В доме стало темно."),
    ("Мы опоздали на поезд.", "Нам пришлось ждать следующего."),
    ("Ветер сорвал шляпу.", "Мужчина побежал за ней."),
    ("Цветок не поливали.", "Он засох."),
    ("Друг пошутил.", "Все засмеялись."),
]
# RCB: (past-tense verb phrase, infinitive, label)
RCB_VERBS = [
    ("знал", "знать", "entailment"), ("понял", "понять", "entailment"), ("увидел", "увидеть", "entailment"),
    ("не верил", "верить", "contradiction"), ("отрицал", "отрицать", "contradiction"), ("не признал", "признать", "contradiction"),
    ("думал", "думать", "neutral"), ("надеялся", "надеяться", "neutral"), ("предполагал", "предполагать", "neutral"),
]
RCB_CLAUSES = ["поезд придёт вовремя", "магазин уже закрыт", "брат вернулся домой", "экзамен перенесли", "дождь скоро кончится", "соседи уехали"]


def danetqa(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows = []
    for idx in range(n):
        place, fact, truth = rng.choice(PLACES), rng.choice(FACTS), rng.random() < 0.6
        head = place[0].upper() + place[1:]
        passage = f"{head} действительно {fact}." if truth else f"{head} никогда не {fact}."
        row = {"question": f"Правда ли, что {place} {fact}?", "passage": passage}
        if labelled:
            row["label"] = truth
        rows.append({**row, "idx": idx})
    return rows


def terra_pair(rng: random.Random) -> tuple[str, str, str]:
    name, (verb, obj), town = rng.choice(NAMES), rng.choice(ACTS), rng.choice(TOWNS)
    premise = f"{name} {verb} {obj} в {town}."
    roll = rng.random()
    if roll < 0.5:
        return premise, f"{name} {verb} {obj}.", "entailment"
    if roll < 0.8:
        return premise, f"{name} не {verb} {obj}.", "not_entailment"
    other = rng.choice([t for t in TOWNS if t != town])
    return premise, f"{name} {verb} {obj} в {other}.", "not_entailment"


def terra(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows = []
    for idx in range(n):
        premise, hypothesis, label = terra_pair(rng)
        row = {"premise": premise, "hypothesis": hypothesis}
        if labelled:
            row["label"] = label
        rows.append({**row, "idx": idx})
    return rows


def parus(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows = []
    for idx in range(n):
        i = rng.randrange(len(PAIRS))
        j = rng.choice([k for k in range(len(PAIRS)) if k != i])
        question = rng.choice(["cause", "effect"])
        side = 1 if question == "effect" else 0  # the answer is the effect (or the cause)
        premise, right, wrong = PAIRS[i][1 - side], PAIRS[i][side], PAIRS[j][side]
        label = rng.randrange(2)
        choices = [wrong, right] if label else [right, wrong]
        row = {"premise": premise, "choice1": choices[0], "choice2": choices[1], "question": question}
        if labelled:
            row["label"] = label
        rows.append({**row, "idx": idx})
    return rows


def rcb(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows = []
    for idx in range(n):
        (verb, infinitive, label), clause, name = rng.choice(RCB_VERBS), rng.choice(RCB_CLAUSES), rng.choice(NAMES)
        row = {"premise": f"{name} {verb}, что {clause}.", "hypothesis": clause[0].upper() + clause[1:] + ".", "verb": infinitive}
        if rng.random() < 0.8:  # the official files sometimes lack "negation"
            row["negation"] = "negation" if verb.startswith("не ") else "no_negation"
        if labelled:
            row["label"] = label
        rows.append({**row, "idx": idx})
    return rows


def lidirus(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for idx in range(n):
        premise, hypothesis, label = terra_pair(rng)
        negated = " не " in hypothesis
        rows.append({
            "sentence1": premise, "sentence2": hypothesis, "knowledge": "", "lexical-semantics": "",
            "logic": "Negation" if negated else "", "predicate-argument-structure": "" if negated else "Core args",
            "idx": idx, "label": label,
        })
    return rows


def write(folder: str, stem: str, rows: list[dict]) -> None:
    path = OUT / folder / f"{stem}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(("\ufeff" if (folder, stem) in BOM_FILES else "") + text, encoding="utf-8")


def main() -> None:
    makers = {"DaNetQA": danetqa, "TERRa": terra, "PARus": parus, "RCB": rcb}
    for seed, (folder, make) in enumerate(makers.items()):
        rng = random.Random(1000 + seed)
        for stem, n in SIZES.items():
            write(folder, stem, make(rng, n, labelled=stem != "test"))
    write("LiDiRus", "LiDiRus", lidirus(random.Random(2000), 50))


if __name__ == "__main__":
    main()
