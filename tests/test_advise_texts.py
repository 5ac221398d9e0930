"""tl-advise on a file of texts it has never seen: the ladder, the report, the saved model, ONNX, bad input."""

import csv
import json

import numpy as np
import pytest
import torch

from tl_utils import advise, data, features, models, textmodels
from tl_utils.advise import cli, deploy, ladder, textfiles


@pytest.fixture(scope="module")
def encoder():
    return models.load_text_encoder()


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    """Film reviews as a CSV, with the troubles a real file has: an empty text, a row without a
    label, and a test review that repeats a training one in capitals."""
    path = tmp_path_factory.mktemp("texts") / "reviews.csv"
    rows = []
    for split, n in (("train", 160), ("val", 60), ("test", 60)):
        d = data.load("rotten-tomatoes", split)
        index = np.random.default_rng(0).permutation(len(d))[:n]
        rows += [(d.x[i], d.classes[int(d.y[i])], split) for i in index]
    rows += [("", "fresh", "train"), ("a fine film", "", "train"), (rows[0][0].upper(), rows[0][1], "test")]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("review", "verdict", "split"), *rows])
    return path


@pytest.fixture(scope="module")
def advised(reviews, tmp_path_factory):
    lines = []
    result = advise.advise(reviews, tmp_path_factory.mktemp("advice") / "out", top_epochs=1, log=lines.append)
    return result, lines


def test_the_checks_find_the_planted_troubles_and_say_which_columns(advised):
    result, lines = advised
    f = result.findings
    assert [str(s) for s in f.skipped] == ["row 281: empty text", "row 282: no label in column 'verdict'"]
    assert [(f.names[c.first], f.names[c.second]) for c in f.leaks] == [("row 1", "row 283")]
    assert result.sizes == {"train": 160, "val": 60, "test": 60}  # the copy left out of test
    assert any("texts from column 'review', labels from column 'verdict' (text and label column guessed" in line
               for line in lines)


def test_the_report_and_the_ladder_for_texts(advised):
    result, _ = advised
    report = (result.out / "report.md").read_text()
    for text in ["row 283", "across splits", "row 281: empty text", "column guessed", result.chosen.name,
                 "onnxruntime", "test texts", "new_texts.txt"]:
        assert text in report, text
    assert str(result.out / "model") in report and ".out-" not in report  # the final folder, not the temporary one
    assert [r.kind for r in result.rungs] == ["knn", "probe", "top", "scratch"]
    assert [r.architecture for r in result.rungs] == ["minilm-l6"] * 3 + ["tfidf"]
    assert result.chosen is ladder.choose(result.rungs, result.val_labels, order=ladder.TEXT_KINDS)  # TF-IDF first for texts
    assert any(line.startswith("Fine-tuning the top encoder layers") for line in result.reasons)
    assert any("TF-IDF + logistic regression baseline" in line for line in result.reasons)


def test_the_saved_text_model_reproduces_the_chosen_method_and_onnx_agrees(advised, reviews, encoder):
    result, _ = advised
    model, config = deploy.load(result.out / "model")
    assert config["input"] == "texts" and config["classes"] == ["fresh", "rotten"] and config["text_column"] == "review"
    table = textfiles.read_table(reviews)
    val = [t for t, c in zip(table.texts, table.codes) if c == 1]
    tokens = textmodels.tokenise(deploy.load_tokenizer(result.out / "model"), val)
    probs = deploy.probabilities(model, tokens)
    assert torch.equal(probs.argmax(1), result.chosen.val_pred)  # the method's own validation predictions
    with torch.no_grad():
        direct = result.chosen.model(**tokens)
    assert torch.allclose(probs, direct if result.chosen.head == "knn" else direct.softmax(1), atol=1e-5)
    onnx = deploy.onnx_probabilities(result.out / "model" / "model.onnx", tokens)
    assert np.abs(onnx - probs.numpy()).max() < advise.ONNX_TOLERANCE and result.onnx_difference < advise.ONNX_TOLERANCE


def test_tl_predict_labels_texts_from_a_text_file_and_onnx_agrees(advised, tmp_path, capsys):
    result, _ = advised
    (tmp_path / "new.txt").write_text("A moving, beautifully acted film.\n\nTedious, muddled and far too long.\n")
    status = cli.predict_main([str(result.out / "model"), str(tmp_path / "new.txt"), str(tmp_path / "gone.txt")])
    out = capsys.readouterr()
    assert status == 2 and "gone.txt: no such file" in out.err
    rows = [line.split("\t") for line in out.out.splitlines()]
    assert [r[0] for r in rows] == [f"{tmp_path / 'new.txt'}:1", f"{tmp_path / 'new.txt'}:3"]
    assert all(r[1] in ("fresh", "rotten") and 0.5 <= float(r[2]) <= 1 for r in rows)
    assert cli.predict_main([str(result.out / "model"), str(tmp_path / "new.txt"), "--onnx"]) == 0
    assert [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()] == [r[1] for r in rows]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_tfidf_as_a_module_gives_scikit_learns_probabilities(encoder, n_classes):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    tokenizer, _ = encoder
    train, val = (data.load("rotten-tomatoes", s).subset(range(n)) for s, n in (("train", 200), ("val", 50)))
    labels = {s: (d.y + (torch.arange(len(d)) % 3 == 0)) % n_classes for s, d in (("train", train), ("val", val))}
    tokens = {s: textmodels.tokenise(tokenizer, d.x) for s, d in (("train", train), ("val", val))}
    net, val_pred, info = textmodels.fit_tfidf(tokens["train"], labels["train"], tokens["val"], labels["val"],
                                               n_classes, len(tokenizer), tokenizer.all_special_ids)
    pieces = {s: tokenizer(list(d.x), add_special_tokens=False)["input_ids"] for s, d in (("train", train), ("val", val))}
    vectorizer = TfidfVectorizer(analyzer=lambda p: p)  # the word pieces, straight from the tokenizer
    reference = LogisticRegression(C=info["C"], max_iter=2000).fit(vectorizer.fit_transform(pieces["train"]),
                                                                   labels["train"])
    expected = reference.predict_proba(vectorizer.transform(pieces["val"]))
    with torch.no_grad():
        probs = net(**tokens["val"]).softmax(1)
    assert probs.shape == (50, n_classes) and np.abs(probs.numpy() - expected).max() < 1e-4
    assert torch.equal(val_pred, probs.argmax(1))
    with pytest.raises(ValueError, match=rf"class\(es\) \[{n_classes}\] have no training text"):
        textmodels.fit_tfidf(tokens["train"], labels["train"], tokens["val"], labels["val"], n_classes + 1,
                             len(tokenizer), [])


def test_text_models_save_load_and_export_with_their_tokenizer(encoder, tmp_path):
    tokenizer, bert = encoder
    train = data.load("rotten-tomatoes", "train").subset(range(40))
    tokens = textmodels.tokenise(tokenizer, train.x)
    x = features.Features(features.embed_texts(tokenizer, bert, train.x), train.y, train.classes, tmp_path, False, 0)
    knn = ladder.knn(x, x, ladder.text_heads(bert), "minilm-l6")
    tfidf, _, _ = textmodels.fit_tfidf(tokens, train.y, tokens, train.y, 2, len(tokenizer), tokenizer.all_special_ids)
    for name, net, head, onnx in (("knn", knn.model, "knn", True), ("tfidf", tfidf, "linear", True)):
        model, config = deploy.deployable_text(net, architecture="tfidf" if name == "tfidf" else "minilm-l6",
                                               head=head, classes=train.classes, max_length=128)
        folder = deploy.save(model, config, tmp_path / name, onnx=onnx, tokenizer=tokenizer)
        loaded, _ = deploy.load(folder)
        assert torch.equal(deploy.probabilities(loaded, tokens), deploy.probabilities(model, tokens))
        if onnx:
            gap = np.abs(deploy.onnx_probabilities(folder / "model.onnx", tokens) - deploy.probabilities(model, tokens)
                         .numpy()).max()
            assert gap < advise.ONNX_TOLERANCE
    assert torch.equal(deploy.probabilities(deploy.load(tmp_path / "knn")[0], tokens).argmax(1),
                       train.y)  # each training text is its own nearest neighbour
    with pytest.raises(ValueError, match="needs its tokenizer"):
        deploy.save(model, config, tmp_path / "none")


def _write(path, rows, header=("text", "label")):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.mark.parametrize("make, args, message", [
    (lambda p: _write(p / "a.csv", [("good", "x")] * 3), ["--text-column", "body"],
     "has no column 'body' (--text-column); its columns are ['text', 'label']"),
    (lambda p: _write(p / "a.csv", [(f"t{i}", "only") for i in range(20)]), [], "only one class ('only')"),
    (lambda p: _write(p / "a.csv", [(f"t{i}", "a") for i in range(20)] + [("t", "b")]), [],
     "too few texts in class(es) {'b': 1}"),
    (lambda p: _write(p / "a.csv", [("", "a"), (" ", "b")]), [], "no row has both a text and a label"),
    (lambda p: (p / "a.jsonl").write_text(json.dumps({"text": "x"}) + "\n{oops") and p / "a.jsonl", [],
     "cannot be read as JSON"),
])
def test_bad_text_input_gets_a_message_and_exit_status_2_and_writes_nothing(tmp_path, capsys, make, args, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    assert cli.main([str(path), "--out", str(out), *args]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("tl-advise: ") and message in last, last
    assert not out.exists()
