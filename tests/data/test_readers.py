"""Readers: official file layouts read exactly, row numbers as a person counts them, one-line errors."""

from __future__ import annotations

import bz2

import pytest

from mtcore.data.files import find_files
from mtcore.data.readers import iter_rows
from mtcore.errors import ConfigError, DataError

MOKORON_COLUMNS = ["id", "tdate", "tname", "ttext", "ttype", "trep", "trtw", "tfav", "tstcount", "tfoll", "tfrien", "listcount"]


def mokoron_line(tweet_id: str, text: str, ttype: str) -> str:
    fields = [tweet_id, "1386325944", "user", text, ttype, "0", "0", "0", "7569", "62", "61", "0"]
    return ";".join('"' + field.replace('"', '""') + '"' for field in fields) + "\n"


def test_jsonl_with_byte_order_mark_keeps_types_and_counts_lines(tmp_path, write):
    path = write.jsonl(tmp_path / "train.jsonl", [
        {"question": "Вода мокрая?", "passage": "Да.", "idx": 0, "label": True},
        {"question": "Кот?", "passage": "Нет.", "idx": 1, "label": False},
    ], bom=True)
    rows = list(iter_rows(path))
    assert [n for n, _ in rows] == [1, 2]
    assert rows[0][1] == {"question": "Вода мокрая?", "passage": "Да.", "idx": 0, "label": True}
    assert list(rows[0][1])[0] == "question"  # no BOM glued to the first key
    assert rows[1][1]["label"] is False


def test_jsonl_blank_lines_skipped_and_bad_json_named_by_line(tmp_path, write):
    path = write.text(tmp_path / "val.jsonl", '{"a": 1}\n\n{"a": 2}\n{"a": \n')
    with pytest.raises(DataError) as err:
        list(iter_rows(path))
    message = str(err.value)
    assert f"{path} row 4: not valid JSON" in message and "\n" not in message


def test_mokoron_quoted_semicolon_csv_without_header(tmp_path, write):
    text = (mokoron_line("408906695721877504", "Пацаны; всем привет", "1")
            + mokoron_line("408906762813579264", "первая строка\nвторая \"цитата\" строка", "1")
            + mokoron_line("408906782916882432", "ok", "1"))
    path = write.text(tmp_path / "positive.csv", text)
    rows = list(iter_rows(path, "csv", sep=";", header=None, names=MOKORON_COLUMNS))
    assert [n for n, _ in rows] == [1, 2, 4]  # the second tweet spans lines 2-3
    assert [row["ttext"] for _, row in rows] == ["Пацаны; всем привет", "первая строка\nвторая \"цитата\" строка", "ok"]
    assert rows[0][1]["id"] == "408906695721877504" and rows[0][1]["ttype"] == "1"
    assert list(rows[0][1]) == MOKORON_COLUMNS


def test_csv_without_header_or_names_numbers_the_columns(tmp_path, write):
    path = write.text(tmp_path / "a.csv", "x,1\ny,2\n")
    assert list(iter_rows(path, header=False)) == [(1, {"0": "x", "1": "1"}), (2, {"0": "y", "1": "2"})]


def test_xnli_tsv_keeps_stray_quotes_and_filters_language(tmp_path, write):
    header = "language\tgold_label\tsentence1\tsentence2\tpairID\n"
    text = header + (
        'en\tneutral\tHe said "hi\tHe spoke.\t1\n'
        'ru\tcontradiction\tОн сказал "привет\tОн молчал.\t2\n'
        'de\tentailment\tEr "sagte\tEr sprach.\t3\n'
        'ru\tentailment\t"Кавычки" в начале\tЕсть кавычки.\t4\n'
    )
    path = write.text(tmp_path / "XNLI-1.0" / "xnli.dev.tsv", text)
    rows = list(iter_rows(path, "tsv", quoting="none", row_filter={"language": "ru"}))
    assert [n for n, _ in rows] == [3, 5]  # line numbers of the file, header is line 1
    assert rows[0][1]["sentence1"] == 'Он сказал "привет'
    assert rows[1][1]["sentence1"] == '"Кавычки" в начале'
    assert rows[1][1]["pairID"] == "4"


def test_row_filter_on_a_missing_field_names_file_and_row(tmp_path, write):
    path = write.text(tmp_path / "d.tsv", "lang\tx\nru\t1\n")
    with pytest.raises(DataError, match=r"d\.tsv row 2: row_filter field 'language' is not in the row"):
        list(iter_rows(path, row_filter={"language": "ru"}))


def test_row_filter_as_reference_and_list_of_values(tmp_path, write):
    path = write.text(tmp_path / "d.csv", "lang,x\nru,1\nen,2\nuk,3\n")
    assert [r["x"] for _, r in iter_rows(path, row_filter={"lang": ["ru", "uk"]})] == ["1", "3"]
    assert [r["x"] for _, r in iter_rows(path, row_filter="operator:truth")] == ["1", "2", "3"]


def test_csv_with_header_and_compression(tmp_path):
    path = tmp_path / "lenta.csv.bz2"
    path.write_bytes(bz2.compress('url,title,text,topic\nu1,"Заголовок","Текст,\nв две строки",Спорт\nu2,T,X,\n'.encode()))
    rows = list(iter_rows(path))
    assert rows == [(2, {"url": "u1", "title": "Заголовок", "text": "Текст,\nв две строки", "topic": "Спорт"}),
                    (4, {"url": "u2", "title": "T", "text": "X", "topic": ""})]


def test_parquet_rows_are_numbered_from_one(tmp_path, write):
    path = write.parquet(tmp_path / "0000.parquet", {"premise": ["a", "b"], "label": [0, 2]})
    assert list(iter_rows(path)) == [(1, {"premise": "a", "label": 0}), (2, {"premise": "b", "label": 2})]


def test_json_document_with_data_field(tmp_path, write):
    path = write.text(tmp_path / "sberquad.json", '{"version": "1.1", "data": [{"title": "t1"}, {"title": "t2"}]}')
    assert [row["title"] for _, row in iter_rows(path)] == ["t1", "t2"]


def test_non_utf8_file_names_the_line_and_byte(tmp_path, write):
    path = write.text(tmp_path / "val.jsonl", '{"a": "ok"}\n{"a": "плохо"}\n', encoding="cp1251")
    with pytest.raises(DataError) as err:
        list(iter_rows(path))
    assert str(err.value).startswith(f"{path} row 2: byte 0x")
    assert "not valid utf-8-sig text" in str(err.value)


def test_wrong_field_count_names_the_row(tmp_path, write):
    path = write.text(tmp_path / "neg.csv", '"1";"a"\n"2";"b";"extra"\n')
    with pytest.raises(DataError, match=r"neg\.csv row 2: 3 fields where 2 columns are expected"):
        list(iter_rows(path, sep=";", header=None, names=["id", "text"]))


def test_unreadable_file_and_unknown_option_and_format(tmp_path, write):
    with pytest.raises(DataError, match="cannot read the file"):
        list(iter_rows(tmp_path / "absent.jsonl"))
    path = write.text(tmp_path / "a.csv", "x\n1\n")
    with pytest.raises(ConfigError, match=r"unknown csv reader option 'seperator' \(did you mean 'sep'\?\)"):
        list(iter_rows(path, seperator=";"))
    with pytest.raises(ConfigError, match=r"unknown data format 'jsnl' \(did you mean 'jsonl'"):
        list(iter_rows(path, "jsnl"))


def test_find_files_ignores_macosx_and_searches_below_data_dir(tmp_path, write):
    write.jsonl(tmp_path / "combined" / "TERRa" / "val.jsonl", [{"a": 1}])
    write.text(tmp_path / "__MACOSX" / "combined" / "TERRa" / "._val.jsonl", "\x00\x05junk")
    write.text(tmp_path / "__MACOSX" / "combined" / "TERRa" / "val.jsonl", "\x00\x05junk")
    assert find_files(tmp_path, "TERRa/val.jsonl") == [tmp_path / "combined" / "TERRa" / "val.jsonl"]
    assert find_files(tmp_path, "**/*.jsonl") == [tmp_path / "combined" / "TERRa" / "val.jsonl"]
    assert find_files(tmp_path / "combined" / "TERRa", ["val.jsonl"]) == [tmp_path / "combined" / "TERRa" / "val.jsonl"]
    with pytest.raises(DataError, match=r"no file matches 'TERRa/vall.jsonl' \(did you mean 'combined/TERRa/val.jsonl'"):
        find_files(tmp_path, "TERRa/vall.jsonl")


def test_a_missing_absolute_path_is_looked_up_where_it_points(tmp_path, write):
    write.jsonl(tmp_path / "rev" / "train.jsonl", [{"a": 1}])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    typo = str(tmp_path / "rev" / "trian.jsonl")
    with pytest.raises(DataError) as info:
        find_files(elsewhere, typo)
    assert str(info.value) == f"{tmp_path / 'rev'}: no file matches {typo!r} (did you mean 'train.jsonl'?)"
    missing = str(tmp_path / "nope" / "train.jsonl")
    with pytest.raises(DataError) as info:
        find_files(elsewhere, missing)
    assert str(info.value) == f"no file matches {missing!r}: there is no folder {str(tmp_path / 'nope')!r} (nearest existing: {tmp_path})"


def test_a_stray_quote_that_swallows_rows_is_refused(tmp_path, write):
    """An opening quote left unclosed would join the next rows into one field: refused, naming the line."""
    path = write.text(tmp_path / "train.csv", 'label,text\npos,хорошо\nneg,"Кино — отстой\npos,отлично\nneg,плохо\n')
    with pytest.raises(DataError) as err:
        list(iter_rows(path))
    assert str(err.value).startswith(f"{path} row 3: a quote opens field 'text' and runs to line 5, taking in 2 line(s) that "
                                     "look like rows of their own (e.g. 'pos,отлично'); if quotes are plain text")
    assert [row["text"] for _, row in iter_rows(path, quoting="none")] == ["хорошо", '"Кино — отстой', "отлично", "плохо"]
    assert len(list(iter_rows(path, multiline=True))) == 2  # the user says fields span lines: read as written
    with pytest.raises(ConfigError, match="reader option multiline must be true or false, not 'false'"):
        list(iter_rows(path, multiline="false"))
    # XNLI-style: the quote opens a row's first field and closes in a later row
    tsv = write.text(tmp_path / "train.tsv", 'premise\thypothesis\tlabel\nа\tб\tneutral\nа\tб\tcontradiction\n"Ну\tв\tneutral\n'
                                             'г\tд\tcontradiction\nе конец"\tж\tneutral\n')
    with pytest.raises(DataError, match=r"train\.tsv row 4: a quote opens field 'premise' and runs to line 6, taking in 2 line"):
        list(iter_rows(tsv))
    short = write.text(tmp_path / "short.tsv", 'premise\thypothesis\tlabel\nа\tб\tentailment\n"Ну\tв\tneutral\nконец"\tneutral\n')
    with pytest.raises(DataError, match=r"short\.tsv row 3: 2 fields where 3 columns are expected .* a quote opened in this row "
                                        r"runs to line 4: if quotes are plain text in this file set the reader option quoting: none$"):
        list(iter_rows(short))


def test_a_stray_quote_in_the_first_row_is_refused_too(tmp_path, write):
    """No earlier row says what a label looks like: the rows after it (or the end of the file) do."""
    path = write.text(tmp_path / "train.csv", 'label,text\nneg,"Кино — отстой\npos,отлично\nneg,плохо\n')
    with pytest.raises(DataError, match=r"train\.csv row 2: a quote opens field 'text' and runs to line 4, taking in 1 line"):
        list(iter_rows(path))
    closed = write.text(tmp_path / "closed.csv", 'label,text\nneg,"Кино\npos,отлично\nneg,плохо"\n'
                                                 + "".join(f"{'pos' if i % 2 else 'neg'},текст {i}\n" for i in range(30)))
    with pytest.raises(DataError, match=r"closed\.csv row 2: a quote opens field 'text' and runs to line 4"):
        list(iter_rows(closed))
    assert len(list(iter_rows(closed, multiline=True))) == 31


def test_quoted_fields_over_several_lines_with_commas_still_read(tmp_path, write):
    """A real multi-line post whose later lines hold a comma is not a stray quote (no known label in them)."""
    path = write.text(tmp_path / "posts.csv", 'label,text\npositive,ok\nnegative,"Первая строка\nP.S. Кто знает, когда поезд?\n'
                                              'ещё, одна"\nneutral,"""цитата"""\n')
    rows = [row for _, row in iter_rows(path)]
    assert [row["label"] for row in rows] == ["positive", "negative", "neutral"]
    assert rows[1]["text"].splitlines()[1] == "P.S. Кто знает, когда поезд?" and rows[2]["text"] == '"цитата"'


def test_byte_order_mark_is_dropped_with_any_utf8_spelling(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("\ufefftext,label\nкот,pos\n".encode())
    for encoding in ("utf-8", "UTF8", "utf-8-sig"):
        assert [row for _, row in iter_rows(path, encoding=encoding)] == [{"text": "кот", "label": "pos"}]


def test_json_lines_in_a_json_file_gets_a_hint(tmp_path, write):
    path = write.text(tmp_path / "train.json", '{"text": "a"}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"train\.json row 2: not valid JSON \(Extra data at column 1\); the file looks like "
                                        r"JSON Lines \(one object per line\): set format: jsonl or name it \.jsonl$"):
        list(iter_rows(path))


def test_any_format_pattern_names_one_file(tmp_path, write):
    """``train.*`` (bring-your-own-data tasks) is one file: a backup is passed over, two data files are refused."""
    write.text(tmp_path / "train.jsonl", '{"text": "a"}\n')
    write.text(tmp_path / "train.jsonl.orig", "old\n")
    assert find_files(tmp_path, "train.*") == [tmp_path / "train.jsonl"]
    write.text(tmp_path / "train.csv", "text\na\n")
    with pytest.raises(DataError) as err:
        find_files(tmp_path, "train.*")
    assert str(err.value) == (f"{tmp_path}: 'train.*' matches 2 files (train.csv, train.jsonl); it stands for one file: move the "
                              "others away, or name the file itself instead of the pattern")
    (tmp_path / "only").mkdir()
    write.text(tmp_path / "only" / "train.csv.orig", "old\n")
    with pytest.raises(DataError, match=r"'train\.\*' matches no data file, only train\.csv\.orig"):
        find_files(tmp_path / "only", "train.*")
    assert find_files(tmp_path, "train.c*") == [tmp_path / "train.csv"]  # other globs match what they match


def test_brackets_in_the_data_folder_are_no_glob_and_a_file_named_with_them_is_found(tmp_path):
    """A folder named 'run [v2]' made every file 'not found' (its name was read as a character class)."""
    from mtcore.data.files import find_files

    root = tmp_path / "run [v2]" / "data"
    root.mkdir(parents=True)
    for name in ("train.jsonl", "dev.jsonl", "a[1].jsonl"):
        (root / name).write_text('{"text": "x"}\n')
    assert find_files(root, "train.jsonl") == [root / "train.jsonl"]
    assert find_files(root, "train.*") == [root / "train.jsonl"]
    assert find_files(root, ["train.jsonl", "dev.jsonl"]) == [root / "train.jsonl", root / "dev.jsonl"]
    assert find_files(root, "a[1].jsonl") == [root / "a[1].jsonl"]  # as written, where a glob would find nothing
    assert find_files(tmp_path / "run [v2]", "train.jsonl") == [root / "train.jsonl"]  # one folder down


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_csv_and_tsv_in_utf16_or_utf32_are_read_with_their_encoding(tmp_path, encoding):
    """Excel's "Unicode Text": lines were split on the byte 0x0A before decoding ("new-line character seen in unquoted
    field")."""
    text = "review\tstars\r\nхорошо\tpos\r\n\"две\r\nстроки\"\tneg\r\n"
    path = tmp_path / "train.tsv"
    data = text.encode(encoding)
    path.write_bytes(data if encoding != "utf-16-le" else b"\xff\xfe" + data)
    rows = [row for _, row in iter_rows(path, "tsv", encoding=encoding)]
    assert rows == [{"review": "хорошо", "stars": "pos"}, {"review": "две\r\nстроки", "stars": "neg"}]


def test_damaged_compressed_files_are_one_line_naming_the_file(tmp_path):
    """A corrupt .xz, a file that is no .xz, a corrupt .gz, a truncated .json.gz: 'unexpected LZMAError / zlib / EOFError'."""
    import gzip
    import lzma

    from mtcore.errors import DataError

    lines = b"".join(b'{"text": "row %d"}\n' % i for i in range(300))
    xz = bytearray(lzma.compress(lines))
    xz[len(xz) // 2] ^= 0x55
    gz = bytearray(gzip.compress(lines))
    gz[10] ^= 0x55
    cases = {"bad.jsonl.xz": bytes(xz), "plain.jsonl.xz": lines, "bad.jsonl.gz": bytes(gz),
             "cut.json.gz": gzip.compress(b'[{"text": "a"}, {"text": "b"}]')[:-10]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=rf"^{tmp_path / name}( row \d+)?: cannot read the file \("):
            list(iter_rows(tmp_path / name))


def test_a_named_pipe_as_a_data_file_is_said_to_be_no_regular_file(tmp_path):
    """It was 'no file matches .../train.jsonl (did you mean 'train.jsonl'?)'."""
    import os

    from mtcore.data.files import find_files
    from mtcore.errors import DataError

    os.mkfifo(tmp_path / "train.jsonl")
    with pytest.raises(DataError, match=r"train.jsonl is not a regular file \(a pipe or a device\)"):
        find_files(tmp_path, "train.jsonl", split="train")


def test_brackets_in_names_are_found_one_folder_down_and_under_an_absolute_glob(tmp_path):
    from mtcore.data.files import find_files

    folder = tmp_path / "d [x]"
    folder.mkdir()
    for name in ("train [a].jsonl", "b.jsonl"):
        (folder / name).write_text('{"text": "x"}\n')
    assert find_files(tmp_path, "train [a].jsonl") == [folder / "train [a].jsonl"]  # nested search
    assert find_files(tmp_path, str(folder / "*.jsonl")) == [folder / "b.jsonl", folder / "train [a].jsonl"]
