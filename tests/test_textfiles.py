"""A learner's texts from CSV / JSON lines: columns given or guessed, bad rows skipped by row, copies found."""

import json

import numpy as np
import pytest

from tl_utils.advise import checks, textfiles


def _csv(path, text):
    path.write_text(text)
    return path


def test_columns_are_guessed_by_name_and_the_guess_is_said(tmp_path):
    table = textfiles.read_table(_csv(tmp_path / "a.csv", "id,Review,sentiment\n" + "".join(
        f"{i},text number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(10))))
    assert (table.text_column, table.label_column, table.guessed) == ("Review", "sentiment", ["text", "label"])
    assert table.classes == ["neg", "pos"] and table.y.tolist() == [i % 2 for i in range(10)]


def test_columns_are_guessed_by_content_when_the_names_say_nothing(tmp_path):
    rows = [{"a": i, "b": f"a long sentence about thing {i} and more", "c": ["x", "y", "z"][i % 3]} for i in range(12)]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    table = textfiles.read_table(path)
    assert (table.text_column, table.label_column) == ("b", "c")  # the longest strings; the fewest distinct values


def test_given_columns_are_used_and_a_missing_one_is_named_with_the_columns_there(tmp_path):
    path = _csv(tmp_path / "a.csv", "title,body,label,stars\nt1,b1,x,1\nt2,b2,y,2\n")
    table = textfiles.read_table(path, text_column="title", label_column="stars")
    assert table.texts == ["t1", "t2"] and table.classes == ["1", "2"] and table.guessed == []
    with pytest.raises(textfiles.TextFileError, match=r"no column 'text' \(--text-column\); its columns are "
                                                      r"\['title', 'body', 'label', 'stars'\]"):
        textfiles.read_table(path, text_column="text")


def test_empty_texts_and_missing_labels_are_skipped_and_listed_by_row(tmp_path):
    path = _csv(tmp_path / "a.csv", 'text,label\nfine,a\n"",b\n"   ",a\nno label,\n,a\ngood,b\n')
    table = textfiles.read_table(path)
    assert table.texts == ["fine", "good"] and table.rows == [1, 6]
    assert [str(s) for s in table.skipped] == ["row 2: empty text", "row 3: empty text",
                                               "row 4: no label in column 'label'", "row 5: empty text"]


def test_labels_as_numbers_sort_as_numbers_and_floats_read_as_integers(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}", "label": v}) for i, v in enumerate([10, 2, 2.0, 1])))
    table = textfiles.read_table(path)
    assert table.classes == ["1", "2", "10"] and table.y.tolist() == [2, 1, 1, 0]


def test_a_split_column_fixes_the_splits_in_any_case_and_bad_values_are_named(tmp_path):
    table = textfiles.read_table(_csv(tmp_path / "a.csv", "text,label,Split\na,x,Training\nb,y,valid\nc,x,TEST\n"
                                                          ",x,\n"))  # a skipped row needs no split
    assert table.fixed_splits and table.codes.tolist() == [0, 1, 2] and table.label_column == "label"
    with pytest.raises(textfiles.TextFileError, match=r"column 'split' has values \['dev'\] \(rows \[2\]\)"):
        textfiles.read_table(_csv(tmp_path / "b.csv", "text,label,split\na,x,train\nb,y,dev\n"))
    with pytest.raises(textfiles.TextFileError, match=r"values \['None'\] \(rows \[1\]\)"):
        textfiles.read_table(_csv(tmp_path / "c.csv", "text,label,split\na,x,\nb,y,test\n"))


def test_na_none_and_null_are_texts_and_labels_not_missing_values(tmp_path):
    table = textfiles.read_table(_csv(tmp_path / "a.csv", "text,label\nNA,None\nnull,b\n12,NA\n"))
    assert table.texts == ["NA", "null", "12"] and table.classes == ["NA", "None", "b"] and not table.skipped


def test_a_list_as_a_label_is_refused(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}", "label": ["a", "b"]}) for i in range(3)))
    with pytest.raises(textfiles.TextFileError, match="not a list"):
        textfiles.read_table(path)


def test_without_a_split_column_texts_are_split_by_a_hash_of_their_words(tmp_path):
    rows = "".join(f"review number {i},{i % 2}\n" for i in range(200))
    before = textfiles.read_table(_csv(tmp_path / "a.csv", "text,label\n" + rows))
    after = textfiles.read_table(_csv(tmp_path / "b.csv", "text,label\n" + rows + "one more review,0\n"))
    assert not before.fixed_splits and np.bincount(before.codes).tolist() == [160, 20, 20]
    assert (before.codes != after.codes[:200]).sum() <= 4  # a new row moves at most a few others


@pytest.mark.parametrize("name, text, message", [
    ("a.xlsx", "PK", "neither CSV nor JSON lines"),
    ("a.csv", "", "cannot be read as CSV"),
    ("a.jsonl", '{"text": "a", "label"', "cannot be read as JSON"),
    ("a.csv", "text\nonly texts\nhere\n", "no column besides 'text' holds labels"),
    ("a.csv", "text,label\n,a\n  ,b\n", "no row has both a text and a label (2 rows skipped)"),
    ("a.csv", "n,m\n1,2\n3,4\n", "no column holds texts"),
])
def test_bad_files_get_a_message_that_says_what_to_change(tmp_path, name, text, message):
    with pytest.raises(textfiles.TextFileError) as error:
        textfiles.read_table(_csv(tmp_path / name, text))
    assert message in str(error.value)


def test_every_copy_in_a_later_split_is_left_out_however_many_there_are(tmp_path):
    table = textfiles.read_table(_csv(tmp_path / "a.csv", "text,label,split\n" + "".join([
        "Same words,p,test\n", "same words!,p,val\n", "SAME WORDS,p,train\n", "other,n,train\n", "x,n,val\n",
        "y,p,test\n"])))
    found = checks.check_texts(table)
    assert found.left_out == [0, 1]  # the test and val copies; training keeps its own
    assert checks.without_leaks(table, found).tolist() == [-1, -1, 0, 0, 1, 2]


def test_copies_ignore_case_and_punctuation_and_the_later_split_loses_its_copy(tmp_path):
    table = textfiles.read_table(_csv(tmp_path / "a.csv", "text,label,split\n" + "".join([
        "A great film!,p,train\n", "a great   film,p,test\n", "dull,n,train\n", "Dull.,n,train\n", "fine,p,val\n",
        "meh,n,val\n", "ok,p,test\n", "bad,n,test\n"])))
    found = checks.check_texts(table)
    assert [(c.first, c.second, c.exact) for c in found.copies] == [(0, 1, False), (2, 3, False)]
    assert [(c.first, c.second) for c in found.leaks] == [(0, 1)] and found.left_out == [1]
    assert checks.without_leaks(table, found).tolist() == [0, -1, 0, 0, 1, 1, 2, 2]
    assert found.noun == "text" and "1 text(s) in validation or test copy a text" in found.lines()[0]


def test_new_texts_for_predictions_come_one_per_line_or_from_a_column(tmp_path):
    (tmp_path / "new.txt").write_text("first\n\n  second  \n")
    assert textfiles.read_texts(tmp_path / "new.txt") == [(f"{tmp_path / 'new.txt'}:1", "first"),
                                                          (f"{tmp_path / 'new.txt'}:3", "second")]
    path = _csv(tmp_path / "new.csv", "id,review\n1,good\n2,\n3,bad\n")
    assert [t for _, t in textfiles.read_texts(path, "review")] == ["good", "bad"]
    with pytest.raises(FileNotFoundError, match="is not a file"):
        textfiles.read_texts(tmp_path / "gone.txt")
    with pytest.raises(textfiles.TextFileError, match="no column 'text', the one the model was trained on"):
        textfiles.read_texts(path, "text")  # never another column in its place


def test_tab_separated_files_read_too(tmp_path):
    table = textfiles.read_table(_csv(tmp_path / "a.tsv", "sentence\tlabel\nhello, world\t1\nbye\t0\n"))
    assert table.texts == ["hello, world", "bye"] and table.classes == ["0", "1"]


def test_a_spreadsheets_csv_utf8_with_a_byte_order_mark_and_semicolons_reads(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes("\ufefftext;label\nTrès bien, merci;positif\nNul;négatif\n".encode("utf-8"))
    table = textfiles.read_table(path)
    assert table.text_column == "text" and table.texts == ["Très bien, merci", "Nul"]
    assert table.classes == ["négatif", "positif"]


def test_a_latin1_csv_is_refused_with_how_to_convert_it(tmp_path):
    path = tmp_path / "ancien.csv"
    path.write_bytes("text,label\ncafé,a\nthé,b\n".encode("latin-1"))
    with pytest.raises(textfiles.TextFileError, match=r"is not UTF-8 .*CSV UTF-8.*iconv -f latin1"):
        textfiles.read_table(path)
