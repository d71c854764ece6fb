"""Write the synthetic Russian SuperGLUE sample shipped in ``mt_russian_superglue/sample/``.

Deterministic (fixed seeds): rerun it only to change the sample, then commit the files. The texts
are invented from templates — nothing is copied from the real datasets — and the labels are
correlated with words (``действительно`` / ``никогда не``, ``не`` in the hypothesis, the verb of
the premise) so that a smoke training can move. Layout and label forms follow the official
files: ``<Task>/train.jsonl, val.jsonl, test.jsonl`` (test without labels), ``LiDiRus/LiDiRus.jsonl``
(labelled), a byte-order mark at the start of two files.

Four more tasks, in the official layouts (``check`` asserts their invariants after writing; their
generators are in ``reading_samples.py``):

* RUSSE: word in context; ``start``/``end`` are character offsets of the occurrence, end exclusive,
  except in train row ``RUSSE_ODD`` whose ``end1`` is inclusive-style (one short), as some official
  rows are. Senses follow from the context words; ``sentence2`` mostly opens with ``И снова`` when
  the senses agree and ``А вот`` when not.
* RWSD: Winograd pairs that differ in one adjective; each text comes with both candidates.
  ``span*_index`` are word indices into ``text.split(" ")``; train row ``RWSD_ODD`` has its
  ``span2_index`` off by one, as a few official rows. The label follows from the adjective (the cue
  word) and which noun ``span1`` is.
* MuSeRC: one passage per line, sentences numbered ``(1) ``, answers labelled 0/1; question and
  answer ``idx`` run over the whole file. Right answers repeat words of the passage, wrong ones name
  things it never mentions (or the other town).
* RuCoS: news with ``@highlight`` lines, entity and answer offsets end-inclusive
  (``text[start:end + 1]``); the right entity is the one the query's context words point to and
  usually repeats in a highlight.

    python plugins/mt-russian-superglue/tools/make_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from reading_samples import NAMES, MUSERC_SIZES, RUCOS_SIZES, RUSSE_ODD, RWSD_ODD, muserc, rucos, russe, rwsd  # the reading tasks

OUT = Path(__file__).resolve().parents[1] / "mt_russian_superglue" / "sample"
SIZES = {"train": 80, "val": 50, "test": 50}
BOM_FILES = {("DaNetQA", "train"), ("RCB", "val")}

PLACES = ["озеро Ясное", "река Светлянка", "посёлок Берёзовка", "гора Каменная", "село Липки", "парк Дубрава", "остров Тихий", "город Новоборск"]
FACTS = ["славится рыбалкой", "лежит на севере", "имеет свой музей", "видна с трассы", "открыта летом", "носит старое имя", "входит в заповедник", "известна садами"]
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


# RUSSE: word -> senses -> templates, the occurrence in [brackets]


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
    more = {"RUSSE": (russe, SIZES), "RWSD": (rwsd, SIZES), "MuSeRC": (muserc, MUSERC_SIZES), "RuCoS": (rucos, RUCOS_SIZES)}
    for seed, (folder, (make, sizes)) in enumerate(more.items(), start=1004):
        rng = random.Random(seed)
        for stem, n in sizes.items():
            rows = make(rng, n, labelled=stem != "test")
            if (folder, stem) == ("RUSSE", "train"):
                rows[RUSSE_ODD]["end1"] -= 1  # inclusive-style end, as in some official rows
            if (folder, stem) == ("RWSD", "train"):
                rows[RWSD_ODD]["target"]["span2_index"] += 1  # off by one, as in a few official rows
            write(folder, stem, rows)
    check()


def read(folder: str, stem: str) -> list[dict]:
    return [json.loads(line) for line in (OUT / folder / f"{stem}.jsonl").read_text(encoding="utf-8").splitlines()]


def russe_ok(row: dict, k: int) -> bool:
    """The [start, end) slice is a whole word beginning like the target word."""
    sentence, start, end = row[f"sentence{k}"], row[f"start{k}"], row[f"end{k}"]
    piece = sentence[start:end]
    return (piece.isalpha() and piece.lower().startswith(row["word"][:3])
            and (start == 0 or not sentence[start - 1].isalpha()) and (end == len(sentence) or not sentence[end].isalpha()))


def rwsd_odd(row: dict) -> bool:
    words, target = [w.lower().rstrip(".,!?;:") for w in row["text"].split(" ")], row["target"]
    span1 = target["span1_text"].lower().split()
    return (words[target["span1_index"]:target["span1_index"] + len(span1)] != span1
            or words[target["span2_index"]] != target["span2_text"].lower())


def check() -> None:
    """Fail loudly if a written file breaks the layout: offsets, counters, labels only outside test."""
    for stem in SIZES:
        labelled = stem != "test"
        russe_rows, rwsd_rows = read("RUSSE", stem), read("RWSD", stem)
        bad = {r["idx"] for r in russe_rows if not (russe_ok(r, 1) and russe_ok(r, 2))}
        assert bad == ({RUSSE_ODD} if stem == "train" else set()), ("RUSSE", stem, bad)
        assert all(("label" in r) == labelled and ("gold_sense1" in r) == labelled for r in russe_rows)
        assert all(r["label"] == (r["gold_sense1"] == r["gold_sense2"]) for r in russe_rows if labelled)
        bad = {r["idx"] for r in rwsd_rows if rwsd_odd(r)}
        assert bad == ({RWSD_ODD} if stem == "train" else set()), ("RWSD", stem, bad)
        assert all(("label" in r) == labelled for r in rwsd_rows)
        questions = [q for r in read("MuSeRC", stem) for q in r["passage"]["questions"]]
        answers = [a for q in questions for a in q["answers"]]
        assert all(r["passage"]["text"].startswith("(1) ") for r in read("MuSeRC", stem))
        assert [q["idx"] for q in questions] == list(range(len(questions))) and all(3 <= len(q["answers"]) <= 5 for q in questions)
        assert [a["idx"] for a in answers] == list(range(len(answers)))
        assert all(("label" in a) == labelled and a.get("label", 0) in (0, 1) for a in answers)
        for row in read("RuCoS", stem):
            text, (qa,) = row["passage"]["text"], row["qas"]
            assert 4 <= len({text[e["start"]:e["end"] + 1] for e in row["passage"]["entities"]}) <= 6
            assert qa["query"].count("@placeholder") == 1 and ("answers" in qa) == labelled and "@highlight\n" in text
            assert bool(qa.get("answers")) == labelled
            spans = [(e["start"], e["end"]) for e in row["passage"]["entities"]]
            assert all(text[a["start"]:a["end"] + 1] == a["text"] and (a["start"], a["end"]) in spans for a in qa.get("answers", []))


if __name__ == "__main__":
    main()
