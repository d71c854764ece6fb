"""Write the synthetic sentiment samples shipped in ``mt_sentiment/sample/``.

Deterministic (fixed seeds): rerun it only to change the sample, then commit the files. Texts are
invented from templates (nothing copied from RuTweetCorp or RuSentiment); sentiment words make the
labels learnable. Layouts follow the official files:

* ``mokoron/positive.csv``, ``negative.csv`` — UTF-8, ``;`` separator, no header, every field in
  double quotes, 12 columns, ``;`` and newlines inside some tweets, ttype 1 / -1;
* ``rusentiment/rusentiment_random_posts.csv``, ``rusentiment_test.csv`` — header ``label,text``,
  quoted multi-line texts, five labels;
* ``sentiment/{train,validation,test}.jsonl`` — the generic task (test unlabelled).

    python plugins/mt-sentiment/tools/make_sample.py
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "mt_sentiment" / "sample"

TOPICS = ["погода", "новый телефон", "экзамен", "концерт", "работа", "поезд", "кофе", "фильм", "футбол", "отпуск"]
POSITIVE = ["Ура, {t} — просто супер :)", "Как же радует {t}!", "{t} — отлично, настроение прекрасное", "Спасибо всем, {t} — это здорово!"]
NEGATIVE = ["Опять {t} — сплошное разочарование :(", "Как же бесит {t}", "{t} — ужас, всё плохо", "Тема дня: {t}, и мне грустно"]
NEUTRAL = ["Сегодня {t} по расписанию", "Кто знает, когда {t}?", "{t}: подробности позже", "Заметка для отчёта: {t}"]
SPEECH = ["С днём рождения, {n}!", "Поздравляю с праздником, {n}!", "Спасибо за поздравления, {n}!", "С Новым годом, {n}!"]
SKIP = ["ааааа {t} ))) ?!", "{t} #репост #ссылка", "…", "{t} http://example.org"]
NAMES = ["Маша", "друзья", "коллеги", "Саша", "мама"]


def fill(rng: random.Random, template: str) -> str:
    text = template.format(t=rng.choice(TOPICS), n=rng.choice(NAMES))
    return text[0].upper() + text[1:]


def tweet(rng: random.Random, positive: bool) -> str:
    text = fill(rng, rng.choice(POSITIVE if positive else NEGATIVE))
    roll = rng.random()
    if roll < 0.1:
        text += "; а завтра снова"  # a ';' inside a quoted field
    elif roll < 0.2:
        text += "\nвторая строка"  # a newline inside a quoted field
    return f"@user{rng.randrange(1000)} {text}" if rng.random() < 0.3 else text


def mokoron(rng: random.Random, rows: int = 125) -> None:
    folder = OUT / "mokoron"
    folder.mkdir(parents=True, exist_ok=True)
    for name, positive in (("positive", True), ("negative", False)):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(rows):
            tweet_id = str(408900000000000000 + (0 if positive else 10**9) + i * 7919)
            writer.writerow([tweet_id, str(1386000000 + i * 97), f"user_{rng.randrange(10**5)}", tweet(rng, positive),
                             "1" if positive else "-1", "0", str(rng.randrange(3)), "0",
                             str(rng.randrange(20000)), str(rng.randrange(500)), str(rng.randrange(500)), "0"])
        (folder / f"{name}.csv").write_text(buffer.getvalue(), encoding="utf-8")


def rusentiment_rows(rng: random.Random, n: int) -> list[tuple[str, str]]:
    templates = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL, "speech": SPEECH, "skip": SKIP}
    weights = {"positive": 3, "negative": 2, "neutral": 4, "speech": 2, "skip": 1}
    labels = [label for label, w in weights.items() for _ in range(w)]
    rows = []
    for _ in range(n):
        label = rng.choice(labels)
        text = fill(rng, rng.choice(templates[label]))
        if rng.random() < 0.15:
            text += "\nP.S. " + fill(rng, rng.choice(NEUTRAL))  # multi-line posts, quoted
        rows.append((label, text))
    return rows


def rusentiment(rng: random.Random) -> None:
    folder = OUT / "rusentiment"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("rusentiment_random_posts.csv", 220), ("rusentiment_test.csv", 60)):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["label", "text"])
        writer.writerows(rusentiment_rows(rng, n))
        (folder / name).write_text(buffer.getvalue(), encoding="utf-8")


def generic(rng: random.Random) -> None:
    folder = OUT / "sentiment"
    folder.mkdir(parents=True, exist_ok=True)
    templates = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
    for split, n in (("train", 60), ("validation", 50), ("test", 50)):
        lines = []
        for _ in range(n):
            label = rng.choice(list(templates))
            row = {"text": fill(rng, rng.choice(templates[label]))}
            if split != "test":
                row["label"] = label
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        (folder / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")


def main() -> None:
    mokoron(random.Random(4000))
    rusentiment(random.Random(4001))
    generic(random.Random(4002))


if __name__ == "__main__":
    main()
