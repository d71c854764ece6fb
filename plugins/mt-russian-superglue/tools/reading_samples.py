"""The four reading tasks of the synthetic sample (RUSSE, RWSD, MuSeRC, RuCoS): their row generators,
used by ``make_sample.py`` (see its docstring for the layouts and the deliberate quirks)."""

from __future__ import annotations

import random
import re

NAMES = ["Борис", "Глеб", "Егор", "Иван", "Олег", "Павел", "Роман", "Семён", "Фёдор", "Тимур"]  # past-tense verbs agree


RUSSE_WORDS = {
    "ключ": [
        ["Он открыл дверь старым [ключом].", "Я забыл [ключ] от квартиры на работе.", "Мама повесила [ключ] от гаража на гвоздь."],
        ["Из-под камня бил холодный [ключ].", "Мы набрали воды из лесного [ключа].", "В овраге журчал чистый [ключ]."]],
    "коса": [
        ["У девочки была длинная русая [коса].", "Сестра заплела [косу] перед школой.", "Бабушка расчесала внучке [косу] и завязала бант."],
        ["Дед наточил [косу] и пошёл на луг.", "Старой [косой] косили траву у дома.", "Крестьянин взял [косу] и вышел в поле."],
        ["Песчаная [коса] уходит далеко в море.", "Лодка пристала к узкой [косе] у залива.", "На морской [косе] гнездятся чайки."]],
    "лук": [
        ["Бабушка нарезала [лук] для супа.", "На грядке вырос зелёный [лук].", "От репчатого [лука] щиплет глаза."],
        ["Охотник натянул [лук] и прицелился.", "Мальчик сделал [лук] из ветки и верёвки.", "Стрела сорвалась с тетивы [лука]."]],
    "замок": [
        ["На холме стоял старинный [замок].", "Туристы осмотрели королевский [замок] с башнями.", "Рыцарь вернулся в свой [замок]."],
        ["Сосед повесил на сарай новый [замок].", "Дверной [замок] заело от мороза.", "Мастер поменял [замок] во входной двери."]],
    "лист": [
        ["Осенью с дерева упал жёлтый [лист].", "Ветер гнал по дороге кленовый [лист].", "Гусеница грызла зелёный [лист] берёзы."],
        ["Ученик взял чистый [лист] бумаги.", "Секретарь положил [лист] в папку.", "Он исписал весь [лист] формулами."]],
}
RUSSE_ODD = 7  # train row whose end1 is inclusive-style
# RWSD: template, fillers (subject, modifier gender or "", object, pronoun, adjective -> subject, adjective -> object)
RWSD_SCHEMAS = [
    ("{a} не помещается в {b}, потому что {p} слишком {adj}.",
     [("Кубок", "m", "чемодан", "он", "большой", "маленький"), ("Диван", "m", "лифт", "он", "широкий", "узкий"),
      ("Книга", "f", "сумку", "она", "толстая", "маленькая"), ("Коробка", "f", "машину", "она", "большая", "тесная")]),
    ("{a} не смог поднять {b}, потому что {p} был слишком {adj}.",
     [("Мальчик", "", "чемодан", "он", "слабым", "тяжёлым"), ("Дед", "", "мешок", "он", "слабым", "тяжёлым")]),
    ("{a} не догнал {b}, потому что {p} бежал слишком {adj}.",
     [("Пёс", "", "зайца", "он", "медленно", "быстро"), ("Полицейский", "", "вора", "он", "медленно", "быстро")]),
    ("{a} не прошёл через {b}, потому что {p} был слишком {adj}.",
     [("Грузовик", "m", "тоннель", "он", "высоким", "низким"), ("Шкаф", "m", "дверной проём", "он", "широким", "узким")]),
]
MODIFIERS = {"m": ["Новый", "Старый"], "f": ["Новая", "Старая"]}
RWSD_ODD = 11  # train row whose span2_index is off by one
# MuSeRC: towns in passages, towns only in wrong answers, professions, hobbies, pets (nom., acc., name)
CITIES = ["Новоборск", "Краснолесье", "Тихоозёрск", "Верхнеречье", "Ясногорье", "Малиновск", "Кедровец", "Светлоярск"]
FAR_CITIES = ["Дальнегорье", "Песчанск", "Заречный Бор", "Студёновск", "Каменный Лог"]
PROFS = ["врачом", "учителем", "поваром", "водителем", "инженером", "почтальоном", "садовником"]
HOBBIES = ["ловит рыбу", "играет в шахматы", "рисует картины", "катается на велосипеде", "ходит в походы", "печёт хлеб"]
PETS = [("собака", "собаку", "Шарик"), ("кот", "кота", "Барсик"), ("попугай", "попугая", "Кеша"), ("черепаха", "черепаху", "Тортилла"), ("хомяк", "хомяка", "Пушок")]
MUSERC_SIZES = {"train": 24, "val": 12, "test": 12}
# RuCoS: invented companies, people, towns; {slots} are entity mentions
COMPANIES = ["Северный луч", "Полярис", "Зелёный берег", "Альфа-Мост", "Кедр", "Орбита", "Светоч", "Ладья"]
SURNAMES = ["Волков", "Соколов", "Морозов", "Лебедев", "Зайцев", "Орлов", "Гусев", "Карпов"]
RUCOS_SIZES = {"train": 60, "val": 30, "test": 30}
RUCOS_QUERIES = {
    "T1": "Жители города @placeholder ждут открытия завода.",
    "C1": "Акции «@placeholder» выросли после новости о заводе.",
    "P1": "@placeholder рассказал о сроках строительства завода.",
    "P2": "@placeholder пока не уточнил, что думает его фирма «{C2}».",
    "T2": "Власти города @placeholder так и не дождались завода.",
}
RUCOS_HIGHLIGHTS = {"T1": "Завод откроется в городе {T1}", "C1": "«{C1}» строит новый завод", "P1": "{P1} назвал сроки",
                    "P2": "{P2} оценил решение конкурентов", "T2": "Город {T2} остался без завода"}


def russe_sentence(template: str, lead: str = "") -> tuple[str, int, int]:
    if lead:
        template = lead + template[0].lower() + template[1:]
    start, end = template.index("["), template.index("]") - 1
    return template.replace("[", "").replace("]", ""), start, end


def russe(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows = []
    for idx in range(n):
        word = rng.choice(sorted(RUSSE_WORDS))
        senses = RUSSE_WORDS[word]
        sense1, same = rng.randrange(len(senses)), rng.random() < 0.5
        if same:
            sense2 = sense1
            first, second = rng.sample(senses[sense1], 2)
        else:
            sense2 = rng.choice([k for k in range(len(senses)) if k != sense1])
            first, second = rng.choice(senses[sense1]), rng.choice(senses[sense2])
        lead = ("И снова " if same else "А вот ") if rng.random() < 0.85 else ("А вот " if same else "И снова ")
        (s1, start1, end1), (s2, start2, end2) = russe_sentence(first), russe_sentence(second, lead)
        row = {"idx": idx, "word": word, "sentence1": s1, "sentence2": s2,
               "start1": start1, "end1": end1, "start2": start2, "end2": end2}
        if labelled:
            row.update(gold_sense1=sense1 + 1, gold_sense2=sense2 + 1, label=same)
        rows.append(row)
    return rows


def word_index(text: str, phrase: str) -> int:
    """Index in ``text.split(" ")`` of the word that starts ``phrase`` (first match after a space)."""
    return text[:text.index(" " + phrase) + 1].count(" ")


def rwsd_pair(rng: random.Random) -> list[tuple[str, dict, bool]]:
    """Both texts of one schema (adjective pointing at the subject, then at the object), each with both candidates."""
    template, fillers = rng.choice(RWSD_SCHEMAS)
    subject, gender, obj, pronoun, adj_subject, adj_object = rng.choice(fillers)
    modifier = rng.choice([""] + MODIFIERS[gender]) if gender else ""
    subject = f"{modifier} {subject.lower()}" if modifier else subject
    out = []
    for adj, right in ((adj_subject, "subject"), (adj_object, "object")):
        text = template.format(a=subject, b=obj, p=pronoun, adj=adj)
        candidates = [(subject, 0, "subject"), (obj, word_index(text, obj), "object")]
        for cand, c_index, role in sorted(candidates, key=lambda c: c[2] != right):  # the right one first
            target = {"span1_index": c_index, "span1_text": cand, "span2_index": word_index(text, pronoun + " "), "span2_text": pronoun}
            out.append((text, target, role == right))
    return out


def rwsd(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    pool: list[tuple[str, dict, bool]] = []
    while len(pool) < n:
        pool += rwsd_pair(rng)
    pool = pool[:n]
    rng.shuffle(pool)
    return [{"idx": idx, "text": text, "target": target, **({"label": label} if labelled else {})}
            for idx, (text, target, label) in enumerate(pool)]


def muserc_questions(rng: random.Random, name: str, city: str, old: str, prof: str, hobby: str, pet: tuple) -> list:
    """(question, right answers, wrong answers) for one passage."""
    far = rng.sample(FAR_CITIES, 4)
    return [
        (f"Где живёт {name}?", [f"В городе {city}", f"{name} живёт в городе {city}"], [f"В городе {c}" for c in far[:3]] + [f"В городе {old}"]),
        (f"Где {name} жил раньше?", [f"В городе {old}"], [f"В городе {c}" for c in far]),
        (f"Кем работает {name}?", [prof.capitalize(), f"Он работает {prof}"], [p.capitalize() for p in PROFS if p != prof][:4]),
        (f"Чем {name} занимается по выходным?", [hobby.capitalize(), f"По выходным он {hobby}"], [h.capitalize() for h in HOBBIES if h != hobby][:4]),
        (f"Кого держит дома {name}?", [pet[1].capitalize(), f"{pet[1].capitalize()} по кличке {pet[2]}"], [p[1].capitalize() for p in PETS if p != pet]),
    ]


def muserc(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows, q_idx, a_idx = [], 0, 0
    for idx in range(n):
        name, (city, old), prof, hobby, pet = rng.choice(NAMES), rng.sample(CITIES, 2), rng.choice(PROFS), rng.choice(HOBBIES), rng.choice(PETS)
        sentences = [f"{name} живёт в городе {city}.", f"Раньше он жил в городе {old}, но потом переехал.",
                     f"Он работает {prof}.", f"По выходным он {hobby}.", f"У него есть {pet[0]} по кличке {pet[2]}."]
        text = " ".join(f"({i}) {s}" for i, s in enumerate(sentences, 1))
        questions = []
        for question, right, wrong in rng.sample(muserc_questions(rng, name, city, old, prof, hobby, pet), rng.randint(2, 3)):
            right = rng.sample(right, rng.randint(1, len(right)))  # 3 to 5 answers, 1 or 2 right
            options = [(t, 1) for t in right] + [(t, 0) for t in rng.sample(wrong, rng.randint(3 - len(right), 5 - len(right)))]
            rng.shuffle(options)
            answers = [{"idx": a_idx + i, "text": t, **({"label": label} if labelled else {})} for i, (t, label) in enumerate(options)]
            a_idx += len(answers)
            questions.append({"question": question, "answers": answers, "idx": q_idx})
            q_idx += 1
        rows.append({"idx": idx, "passage": {"text": text, "questions": questions}})
    return rows


def fill(template: str, values: dict[str, str]) -> tuple[str, list[tuple[str, int, int]]]:
    """``template`` with its {slots} filled, and (slot, start, inclusive end) of every mention."""
    out, spans, pos = [], [], 0
    for part in re.split(r"(\{\w+\})", template):
        key = part[1:-1] if part.startswith("{") else ""
        if key in values:
            part = values[key]
            spans.append((key, pos, pos + len(part) - 1))
        out.append(part)
        pos += len(part)
    return "".join(out), spans


def rucos(rng: random.Random, n: int, labelled: bool) -> list[dict]:
    rows = []
    for idx in range(n):
        c1, c2 = rng.sample(COMPANIES, 2)
        (f1, f2), (s1, s2), (t1, t2) = rng.sample(NAMES, 2), rng.sample(SURNAMES, 2), rng.sample(CITIES, 2)
        values = {"C1": c1, "C2": c2, "P1": f"{f1} {s1}", "P2": f"{f2} {s2}", "T1": t1, "T2": t2}
        rival, moved = rng.choice([(True, False), (False, True), (True, True)])  # 4 to 6 entities
        body = ["Компания «{C1}» объявила об открытии нового завода в городе {T1}.", "Об этом сообщил её директор {P1}."]
        body += ["{P2}, глава конкурирующей фирмы «{C2}», назвал это решение смелым."] if rival else []
        body += ["Раньше завод планировали построить в городе {T2}."] if moved else []
        body += ["{P1} добавил, что первые рабочие места появятся уже осенью."] if rng.random() < 0.5 else []
        keys = ["T1", "C1", "P1"] + (["P2"] if rival else []) + (["T2"] if moved else [])
        right = rng.choice(keys)
        lines = [right] if rng.random() < 0.8 else []  # 1-2 highlights, mostly repeating the right entity
        lines += rng.sample([k for k in keys if k != right], rng.randint(1 - len(lines), 1))
        text, spans = fill(" ".join(body) + "".join("\n@highlight\n" + RUCOS_HIGHLIGHTS[k] for k in lines), values)
        qa: dict = {"query": fill(RUCOS_QUERIES[right], values)[0]}
        if labelled:
            qa["answers"] = [{"start": s, "end": e, "text": text[s:e + 1]} for key, s, e in spans if key == right]
        qa["idx"] = idx
        entities = [{"start": s, "end": e} for _, s, e in spans]
        rows.append({"idx": idx, "source": "synthetic", "passage": {"text": text, "entities": entities}, "qas": [qa]})
    return rows
