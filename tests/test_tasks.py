"""The four tasks: encode -> collate -> decode fake logits -> metrics, on hand-made examples with known answers."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from kgreason.core.batch import IGNORE_INDEX, Collator
from kgreason.core.errors import ConfigError, RegistryError
from kgreason.core.example import Example
from kgreason.tasks import build_task
from kgreason.tasks.base import LabelError
from kgreason.tasks.choice import MultipleChoiceTask
from kgreason.tasks.registry import tasks
from kgreason.tasks.relation import RelationClassificationTask, mark_entities
from kgreason.tasks.sequence import ExampleError, SequenceClassificationTask
from kgreason.tasks.token import TokenClassificationTask, align_to_words

SENTIMENT = ["negative", "neutral", "positive"]
TAGS = ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"]
RELATIONS = ["no_relation", "founded_by", "born_in"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from kgreason.encoders.resolve import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path())


@pytest.fixture(scope="module")
def collator(tokenizer) -> Collator:
    return Collator(pad_token_id=tokenizer.pad_token_id)


def one_hot(ids: list[int], num: int, *, scale: float = 5.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), num).float() * scale  # (B, L)


def token_logits(batch, num_labels: int, tags: list[list[int]]) -> torch.Tensor:
    """(B, T, L) logits whose argmax at each labelled position is the given tag id, noise elsewhere."""
    logits = torch.randn(*batch.input_ids.shape, num_labels)  # (B, T, L)
    for b, row in enumerate(tags):
        positions = (batch.labels[b] != IGNORE_INDEX).nonzero().flatten().tolist()
        for position, tag in zip(positions, row, strict=True):
            logits[b, position, tag] = 100.0
    return logits


# --- registry -----------------------------------------------------------------------------------------------


def test_registry_builds_every_task_and_config_round_trips():
    assert tasks.names() == [
        "multiple_choice",
        "relation_classification",
        "sequence_classification",
        "token_classification",
    ]
    built = [
        build_task("sequence_classification", labels=SENTIMENT),
        build_task("token_classification", labels=TAGS),
        build_task("relation_classification", labels=RELATIONS, no_relation="born_in"),
        build_task("multiple_choice"),
    ]
    assert [t.head for t in built] == ["sequence", "token", "relation", "choice"]
    for task in built:
        again = build_task(**task.config())
        assert type(again) is type(task) and again.labels == task.labels
    assert build_task(**built[2].config()).no_relation == "born_in"


def test_registry_errors_name_the_choices():
    with pytest.raises(RegistryError, match="Did you mean 'token_classification'"):
        build_task("token_clasification", labels=TAGS)
    with pytest.raises(ConfigError, match="Did you mean 'no_relation'"):
        build_task("relation_classification", labels=RELATIONS, no_relaton="x")
    with pytest.raises(LabelError, match="at least 2 labels"):
        build_task("sequence_classification", labels=["only"])
    with pytest.raises(LabelError, match="duplicate"):
        build_task("sequence_classification", labels=["a", "a"])


# --- sequence classification ----------------------------------------------------------------------------------


def test_sequence_round_trip_and_hand_computed_scores(tokenizer, collator):
    task = SequenceClassificationTask(labels=SENTIMENT)
    examples = [
        Example(text="Profit fell sharply.", label="negative", uid="a"),
        Example(text="The meeting is on Monday.", label="neutral", uid="b"),
        Example(text="Sales rose 20 %.", label="positive", uid="c"),
        Example(text="Is the outlook good?", text_pair="Yes, very good.", label="positive", uid="d"),
    ]
    data = task.encode_all(examples, tokenizer=tokenizer, max_length=32)
    assert [e.labels for e in data.encoded] == [0, 1, 2, 2]
    assert data.truncated == 0
    assert set(data[3].token_type_ids) == {0, 1} and set(data[0].token_type_ids) == {0}
    batch = collator(data.encoded)
    assert batch.input_ids.shape == (4, max(data.lengths)) and batch.labels.tolist() == [0, 1, 2, 2]
    perfect = task.decode(one_hot([0, 1, 2, 2], 3), batch)
    assert perfect == ["negative", "neutral", "positive", "positive"]
    assert task.metrics(perfect, examples).values == {"accuracy": 1.0, "macro_f1": 1.0}
    wrong = task.decode(one_hot([0, 1, 1, 2], 3), batch)
    scores = task.metrics(wrong, examples)
    # neg F1 1; neutral P 1/2 R 1 -> 2/3; positive P 1 R 1/2 -> 2/3
    assert scores.values["accuracy"] == pytest.approx(0.75)
    assert scores.values["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert scores.score == scores.values["accuracy"]
    assert scores.extra["per_class"]["neutral"]["f1"] == pytest.approx(2 / 3)
    assert scores.extra["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_sequence_truncation_flag_exact_boundary_and_warning(tokenizer, caplog):
    task = SequenceClassificationTask(labels=SENTIMENT)
    text = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 ."
    full = len(tokenizer(text)["input_ids"])
    exact = task.encode(Example(text=text, label="positive"), tokenizer=tokenizer, max_length=full)
    assert not exact.truncated and len(exact.input_ids) == full
    cut = task.encode(Example(text=text, label="positive"), tokenizer=tokenizer, max_length=full - 1)
    assert cut.truncated and len(cut.input_ids) == full - 1
    assert cut.input_ids[-1] == tokenizer.sep_token_id
    examples = [Example(text=text, label="positive"), Example(text="Short.", label="neutral")] * 2
    with caplog.at_level(logging.WARNING, logger="kgreason.tasks.base"):
        data = task.encode_all(examples, tokenizer=tokenizer, max_length=8, desc="encode dev")
    assert data.truncated == 2 and [e.truncated for e in data.encoded] == [True, False, True, False]
    assert "encode dev: 2 of 4 examples were longer than max_length=8" in caplog.text


def test_sequence_bad_input(tokenizer):
    task = SequenceClassificationTask(labels=SENTIMENT)
    with pytest.raises(ExampleError, match=r"example 'x1' \(#3\): text is empty"):
        task.encode(Example(text="", label="neutral", uid="x1"), tokenizer=tokenizer, max_length=16, index=3)
    with pytest.raises(ExampleError, match=r"example #7: text is empty; expected non-blank text"):
        task.encode(Example(text=" \t\n", label="neutral"), tokenizer=tokenizer, max_length=16, index=7)
    with pytest.raises(ExampleError, match="text_pair is empty"):
        task.encode(Example(text="a", text_pair=" ", label="neutral"), tokenizer=tokenizer, max_length=16)
    with pytest.raises(
        LabelError, match=r"example 'y' \(#0\): label 'bullish' is not in the label set \['negative'"
    ):
        task.encode(Example(text="a", label="bullish", uid="y"), tokenizer=tokenizer, max_length=16)
    with pytest.raises(ValueError, match="max_length=2 is too small"):
        task.encode(Example(text="a b c", label="neutral"), tokenizer=tokenizer, max_length=2)
    with pytest.raises(ValueError, match=r"expected logits of shape \(B, 3\)"):
        task.decode(torch.zeros(2, 4), None)
    with pytest.raises(ValueError, match="1 predictions for 2 examples"):
        task.metrics(["neutral"], [Example(text="a", label="neutral")] * 2)
    with pytest.raises(ExampleError, match="has no label"):
        task.metrics(["neutral"], [Example(text="a", uid="u")])
    with pytest.raises(LabelError, match="predicted label 'up'"):
        task.metrics(["up"], [Example(text="a", label="neutral")])
    unlabelled = task.encode(Example(text="a"), tokenizer=tokenizer, max_length=16)
    assert unlabelled.labels is None


# --- token classification -------------------------------------------------------------------------------------


def test_token_alignment_on_words_that_split(tokenizer, collator):
    task = TokenClassificationTask(labels=TAGS)
    words = ["Peter", "Blackburn", "flew", "to", "Zeebrugge", "and", "Dnepropetrovsk", "."]
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-LOC", "O"]
    assert tokenizer.tokenize("Zeebrugge") == ["zee", "##br", "##ug", "##ge"]
    encoded = task.encode(
        Example(text=" ".join(words), tokens=words, label=tags), tokenizer=tokenizer, max_length=64
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert encoded.word_ids[0] is None and encoded.word_ids[-1] is None
    # the first sub-token of each word carries its tag; the rest and the special tokens are ignored
    labelled = [(pieces[i], TAGS[label]) for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX]
    assert labelled == [
        ("peter", "B-PER"),
        ("blackburn", "I-PER"),
        ("flew", "O"),
        ("to", "O"),
        ("zee", "B-LOC"),
        ("and", "O"),
        ("d", "B-LOC"),
        (".", "O"),
    ]
    zee = pieces.index("zee")
    assert pieces[zee + 1 : zee + 4] == ["##br", "##ug", "##ge"]
    assert encoded.labels[zee + 1 : zee + 4] == [IGNORE_INDEX] * 3
    assert encoded.word_ids[zee : zee + 4] == [4, 4, 4, 4]
    assert len(encoded.labels) == len(encoded.input_ids) == len(encoded.word_ids)
    batch = collator([encoded])
    assert batch.labels.shape == batch.input_ids.shape
    decoded = task.decode(token_logits(batch, len(TAGS), [[TAGS.index(t) for t in tags]]), batch)
    assert decoded == [tags]


def test_token_perfect_and_one_wrong_entity(tokenizer, collator):
    task = TokenClassificationTask(labels=TAGS)
    sentences = [
        (["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"]),
        (["Peter", "Blackburn", "visited", "Zeebrugge", "."], ["B-PER", "I-PER", "O", "B-LOC", "O"]),
    ]
    examples = [
        Example(text=" ".join(w), tokens=w, label=t, uid=f"s{i}") for i, (w, t) in enumerate(sentences)
    ]
    batch = collator(task.encode_all(examples, tokenizer=tokenizer, max_length=32).encoded)
    gold_ids = [[TAGS.index(t) for t in tags] for _, tags in sentences]
    perfect = task.decode(token_logits(batch, len(TAGS), gold_ids), batch)
    scores = task.metrics(perfect, examples)
    assert scores.score == 1.0 and scores.values["token_accuracy"] == 1.0
    assert scores.extra["words_cut"] == 0 and scores.extra["strict_iob2"]["f1"] == 1.0
    # Zeebrugge predicted ORG instead of LOC: 3 of 4 predicted entities right, 3 of 4 gold entities found
    wrong_ids = [gold_ids[0], [*gold_ids[1][:3], TAGS.index("B-ORG"), gold_ids[1][4]]]
    scores = task.metrics(task.decode(token_logits(batch, len(TAGS), wrong_ids), batch), examples)
    assert scores.values["precision"] == pytest.approx(0.75)
    assert scores.values["recall"] == pytest.approx(0.75)
    assert scores.values["f1"] == pytest.approx(0.75)
    assert scores.values["token_accuracy"] == pytest.approx(8 / 9)
    assert scores.extra["per_type"]["LOC"]["recall"] == 0.0 and scores.extra["per_type"]["PER"]["f1"] == 1.0


def test_token_strict_iob2_differs_from_default():
    task = TokenClassificationTask(labels=TAGS)
    examples = [Example(text="Peter Blackburn", tokens=["Peter", "Blackburn"], label=["B-PER", "I-PER"])]
    scores = task.metrics([["I-PER", "I-PER"]], examples)
    assert scores.values["f1"] == 1.0  # conlleval: an I- after O starts an entity
    assert scores.extra["strict_iob2"]["f1"] == 0.0  # strict IOB2: not a well-formed entity


def test_token_truncation_cuts_words_and_counts_them(tokenizer, collator):
    task = TokenClassificationTask(labels=TAGS)
    words = ["Zeebrugge"] + ["the"] * 20 + ["Peter"]
    tags = ["B-LOC"] + ["O"] * 20 + ["B-PER"]
    example = Example(text=" ".join(words), tokens=words, label=tags)
    encoded = task.encode(example, tokenizer=tokenizer, max_length=12)
    assert encoded.truncated and len(encoded.input_ids) == 12
    kept = len({w for w in encoded.word_ids if w is not None})
    assert kept == 7  # 4 sub-tokens of Zeebrugge + 6 words + [CLS] + [SEP]
    batch = collator([encoded])
    decoded = task.decode(token_logits(batch, len(TAGS), [[TAGS.index(t) for t in tags[:kept]]]), batch)
    assert decoded == [tags[:kept]]
    aligned = align_to_words(decoded, [example])
    assert aligned.tags == [tags[:kept] + ["O"] * (len(words) - kept)]
    assert (aligned.words_cut, aligned.examples_cut) == (len(words) - kept, 1)
    scores = task.metrics(decoded, [example])
    assert scores.extra["words_cut"] == 15 and scores.extra["examples_cut"] == 1
    assert scores.values["precision"] == 1.0 and scores.values["recall"] == 0.5  # Peter was cut off
    data = task.encode_all([example, example], tokenizer=tokenizer, max_length=12)
    assert data.truncated == 2


def test_token_decode_from_word_ids_and_silent_words(tokenizer):
    task = TokenClassificationTask(labels=TAGS)
    words = ["Ada", "\u200b", "Zeebrugge"]  # a zero-width space tokenises to nothing: kept as [UNK]
    encoded = task.encode(
        Example(text="x", tokens=words, label=["B-PER", "O", "B-LOC"]), tokenizer=tokenizer, max_length=16
    )
    pieces = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    assert pieces[:4] == ["[CLS]", "ada", "[UNK]", "zee"]
    assert [TAGS[i] for i in encoded.labels if i != IGNORE_INDEX] == ["B-PER", "O", "B-LOC"]
    word_ids = torch.tensor([[-1 if w is None else w for w in encoded.word_ids]])  # (1, T)
    logits = torch.zeros(1, len(encoded.input_ids), len(TAGS))  # (1, T, L)
    logits[0, :, TAGS.index("O")] = 1.0
    logits[0, 1, TAGS.index("B-PER")] = 5.0
    logits[0, 4, TAGS.index("I-LOC")] = 5.0  # a continuation sub-token: ignored
    batch = SimpleNamespace(word_ids=word_ids, labels=None)
    assert task.decode(logits, batch) == [["B-PER", "O", "O"]]
    with pytest.raises(ValueError, match="needs batch.word_ids or batch.labels"):
        task.decode(logits, SimpleNamespace(labels=None))
    unlabelled = task.encode(Example(text="x", tokens=words), tokenizer=tokenizer, max_length=16)
    assert unlabelled.labels is None and unlabelled.word_ids == encoded.word_ids


def test_token_bad_input(tokenizer):
    task = TokenClassificationTask(labels=TAGS)
    with pytest.raises(ExampleError, match=r"example 't1' \(#2\): tokens are missing"):
        task.encode(Example(text="a b", uid="t1"), tokenizer=tokenizer, max_length=16, index=2)
    with pytest.raises(ExampleError, match="tokens are empty"):
        task.encode(Example(text="a", tokens=[]), tokenizer=tokenizer, max_length=16)
    with pytest.raises(ExampleError, match=r"word 1 is ' '; expected non-blank text"):
        task.encode(
            Example(text="a", tokens=["a", " "], label=["O", "O"]), tokenizer=tokenizer, max_length=16
        )
    with pytest.raises(ExampleError, match="label has 1 tags for 2 words"):
        task.encode(Example(text="a b", tokens=["a", "b"], label=["O"]), tokenizer=tokenizer, max_length=16)
    with pytest.raises(
        LabelError, match=r"example #0, word 1: label 'B-FOO' is not in the label set \['B-LOC'"
    ):
        task.encode(
            Example(text="a b", tokens=["a", "b"], label=["O", "B-FOO"]), tokenizer=tokenizer, max_length=16
        )
    with pytest.raises(ValueError, match="3 predicted tags for 2 words"):
        task.metrics([["O", "O", "O"]], [Example(text="a b", tokens=["a", "b"], label=["O", "O"])])
    with pytest.raises(LabelError, match="needs a tag set"):
        TokenClassificationTask(labels=[])


# --- relation classification ----------------------------------------------------------------------------------


TEXT = "Microsoft was founded by Bill Gates in Albuquerque in 1975 ."


def test_relation_markers_and_positions(tokenizer, collator):
    task = RelationClassificationTask(labels=RELATIONS)
    assert TEXT[0:9] == "Microsoft" and TEXT[25:35] == "Bill Gates" and TEXT[39:50] == "Albuquerque"
    plain = Example(text=TEXT, spans=[(0, 9), (25, 35)], label="founded_by", uid="r0")
    reversed_ = Example(text=TEXT, spans=[(39, 50), (25, 35)], label="born_in", uid="r1")  # tail before head
    typed = Example(
        text=TEXT,
        spans=[(0, 9), (25, 35)],
        label="founded_by",
        metadata={"head_type": "org", "tail_type": "person"},
    )
    assert (
        mark_entities(TEXT, (0, 9), (25, 35)).text
        == "@ Microsoft @ was founded by # Bill Gates # in Albuquerque in 1975 ."
    )
    assert (
        mark_entities(TEXT, (39, 50), (25, 35)).text
        == "Microsoft was founded by # Bill Gates # in @ Albuquerque @ in 1975 ."
    )
    assert mark_entities("ab", (0, 1), (1, 2)).text == "@ a @ # b #"
    data = task.encode_all([plain, reversed_, typed], tokenizer=tokenizer, max_length=64)
    head_id, tail_id = tokenizer.convert_tokens_to_ids(["@", "#"])
    for item in data.encoded:
        h, t = item.marker_positions
        assert item.input_ids[h] == head_id and item.input_ids[t] == tail_id
    pieces = tokenizer.convert_ids_to_tokens(data[2].input_ids)
    assert pieces[1:7] == ["@", "*", "org", "*", "microsoft", "@"]
    assert data[1].marker_positions[0] > data[1].marker_positions[1]
    batch = collator(data.encoded)
    assert batch.marker_positions.tolist() == [list(e.marker_positions) for e in data.encoded]
    predictions = task.decode(one_hot([1, 2, 1], 3), batch)
    assert task.metrics(predictions, [plain, reversed_, typed]).values == {
        "accuracy": 1.0,
        "macro_f1": 1.0,
        "micro_f1": 1.0,
    }


def test_relation_micro_f1_excludes_no_relation(tokenizer):
    task = RelationClassificationTask(labels=RELATIONS)
    gold = ["founded_by", "born_in", "no_relation", "no_relation"]
    examples = [Example(text=TEXT, spans=[(0, 9), (25, 35)], label=label) for label in gold]
    scores = task.metrics(["founded_by", "no_relation", "born_in", "no_relation"], examples)
    # positives: 2 predicted (1 right), 2 gold (1 found) -> P = R = F1 = 1/2
    assert scores.values["micro_f1"] == pytest.approx(0.5)
    assert scores.extra["micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "excluded": "no_relation"}
    assert scores.values["accuracy"] == pytest.approx(0.5)
    all_labels = RelationClassificationTask(labels=["a", "b"])
    examples = [Example(text=TEXT, spans=[(0, 9), (25, 35)], label=label) for label in "aab"]
    scores = all_labels.metrics(["a", "b", "b"], examples)  # no "no_relation": micro-F1 = accuracy
    assert scores.values["micro_f1"] == pytest.approx(2 / 3) and scores.extra["micro"]["excluded"] is None


def test_relation_truncates_around_the_entities(tokenizer):
    task = RelationClassificationTask(labels=RELATIONS)
    prefix = "Earlier news . " * 40
    text = prefix + TEXT + " Later news ." * 40
    start = len(prefix)
    example = Example(text=text, spans=[(start, start + 9), (start + 25, start + 35)], label="founded_by")
    encoded = task.encode(example, tokenizer=tokenizer, max_length=24)
    assert encoded.truncated and len(encoded.input_ids) <= 24
    pieces = tokenizer.convert_ids_to_tokens(encoded.input_ids)
    h, t = encoded.marker_positions
    assert (
        pieces[h] == "@"
        and pieces[h + 1] == "microsoft"
        and pieces[t] == "#"
        and pieces[t + 1 : t + 3] == ["bill", "gates"]
    )
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]" and pieces.count("#") == 2
    # whole words only at the window edges: no dangling "##" continuation after [CLS]
    assert not pieces[1].startswith("##")
    far = Example(text=text, spans=[(0, 7), (len(text) - 5, len(text) - 1)], label="no_relation", uid="far")
    with pytest.raises(
        ExampleError, match=r"example 'far' \(#0\): the two marked entities .* raise max_length"
    ):
        task.encode(far, tokenizer=tokenizer, max_length=24)


def test_relation_bad_spans(tokenizer):
    task = RelationClassificationTask(labels=RELATIONS)

    def encode(spans, text=TEXT, label="founded_by"):
        return task.encode(
            Example(text=text, spans=spans, label=label, uid="q"), tokenizer=tokenizer, max_length=64
        )

    with pytest.raises(ExampleError, match=r"example 'q' \(#0\): no spans; expected 2 character spans"):
        encode(None)
    with pytest.raises(ExampleError, match="3 spans"):
        encode([(0, 9), (25, 35), (39, 50)])
    with pytest.raises(
        ExampleError, match=r"tail span \(25, 99\) is out of range; expected 0 <= start < end <= 60"
    ):
        encode([(0, 9), (25, 99)])
    with pytest.raises(ExampleError, match=r"head span \(5, 5\) is out of range"):
        encode([(5, 5), (25, 35)])
    with pytest.raises(ExampleError, match=r"head span \(0, 9\) and tail span \(4, 12\) overlap"):
        encode([(0, 9), (4, 12)])
    with pytest.raises(ExampleError, match="covers only whitespace"):
        encode([(9, 10), (25, 35)])
    with pytest.raises(ExampleError, match="is not a \\(start, end\\) pair"):
        encode([(0, "x"), (25, 35)])
    with pytest.raises(ExampleError, match="text is empty"):
        encode([(0, 1), (1, 2)], text="  ")
    with pytest.raises(LabelError, match="label 'ceo_of' is not in the label set"):
        encode([(0, 9), (25, 35)], label="ceo_of")


# --- multiple choice ------------------------------------------------------------------------------------------


def test_choice_ragged_round_trip(tokenizer, collator):
    task = MultipleChoiceTask()
    examples = [
        Example(text="Where do penguins live?", choices=["Antarctica", "Sahara", "Moon"], label=0, uid="c0"),
        Example(text="2 + 2 =", choices=["3", "4", "5", "22"], label=1, uid="c1"),
    ]
    data = task.encode_all(examples, tokenizer=tokenizer, max_length=32)
    assert [len(e.input_ids) for e in data.encoded] == [3, 4]
    assert [e.labels for e in data.encoded] == [0, 1]
    first = tokenizer.convert_ids_to_tokens(data[0].input_ids[1])
    assert first[-3:] == ["[SEP]", "sahara", "[SEP]"] and set(data[0].token_type_ids[1]) == {0, 1}
    batch = collator(data.encoded)
    assert batch.input_ids.shape[:2] == (2, 4) and batch.attention_mask[0, 3].sum() == 0
    logits = torch.tensor(
        [[3.0, 1.0, 0.0, 9.0], [0.0, 2.0, 1.0, 0.0]]
    )  # (B, C): padded choice 3 scores highest
    predictions = task.decode(logits, batch)
    assert predictions == [0, 1]
    assert task.metrics(predictions, examples).values == {"accuracy": 1.0}
    assert task.metrics([2, 1], examples).values == {"accuracy": 0.5}


def test_choice_truncation_and_bad_input(tokenizer):
    task = MultipleChoiceTask()
    long = Example(text="word " * 50, choices=["yes", "no"], label=1)
    encoded = task.encode(long, tokenizer=tokenizer, max_length=16)
    assert encoded.truncated and all(len(ids) == 16 for ids in encoded.input_ids)
    assert tokenizer.convert_ids_to_tokens(encoded.input_ids[1])[-2:] == ["no", "[SEP]"]

    def encode(**fields):
        return task.encode(Example(uid="m", **fields), tokenizer=tokenizer, max_length=16)

    with pytest.raises(
        LabelError,
        match=r"example 'm' \(#0\): label 3 is not a choice index; the example has 3 choices \(0..2\)",
    ):
        encode(text="q", choices=["a", "b", "c"], label=3)
    with pytest.raises(LabelError, match="label -1 is not a choice index"):
        encode(text="q", choices=["a", "b"], label=-1)
    with pytest.raises(LabelError, match="label True is not a choice index"):
        encode(text="q", choices=["a", "b"], label=True)
    with pytest.raises(LabelError, match="label 'a' is not a choice index"):
        encode(text="q", choices=["a", "b"], label="a")
    with pytest.raises(ExampleError, match="1 choice\\(s\\); expected at least 2"):
        encode(text="q", choices=["a"], label=0)
    with pytest.raises(ExampleError, match="no choices"):
        encode(text="q", label=0)
    with pytest.raises(ExampleError, match="choice 1 is empty"):
        encode(text="q", choices=["a", ""], label=0)
    with pytest.raises(ExampleError, match=r"example 'm' \(#0\): text is empty"):
        encode(text=" ", choices=["a", "b"], label=0)
