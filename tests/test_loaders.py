"""load_sessions in every format and every error path, write_opera_parquet, Shop-CART rows,
bundled_sessions and resolve_sessions. All data is built here, offline."""

from __future__ import annotations

import gzip
import json
import logging
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shop_env import loaders
from shop_env.loaders import (
    FORMATS,
    OPERA_COLUMNS,
    bundled_sessions,
    detect_format,
    load_sessions,
    resolve_sessions,
    shopcart_rows,
    write_opera_parquet,
)
from shop_env.session import Action, Session, SessionFormatError, Step, read_jsonl, write_jsonl

FIXTURE = Path(__file__).parent / "fixtures" / "real_format_sessions.jsonl"
PAGE = '<html><head><title>Shop</title></head><body><a name="header.logo">Shop</a></body></html>'


@pytest.fixture(scope="module")
def real_sessions() -> list[Session]:
    sessions = read_jsonl(FIXTURE)
    assert len(sessions) >= 2 and all(len(session) >= 3 for session in sessions)
    return sessions


def sessions_with_extras() -> list[Session]:
    """Extras of every JSON type at both levels, and fields left empty, to test lossless round trips."""
    steps = [
        Step(PAGE, Action("type_and_submit", name="header.search", text="red shoes"), rationale=None,
             extra={"click_type": "search_box", "scores": [0.5, 1], "meta": {"k": None}, "flag": True}),
        Step(PAGE, Action("click", name="header.logo"), rationale="Back home.", url="https://shop/",
             extra={"count": 3}),
        Step(PAGE, Action("terminate")),
    ]
    return [Session("extras-1", steps, source=None, persona="Likes red.", extra={"cohort": 2, "tag": "x"})]


def shuffled_string_shards(sessions: list[Session], directory: Path, shards: int = 3, seed: int = 0) -> Path:
    """The sessions as OPeRA parquet, rows shuffled across several shards, every column a string."""
    write_opera_parquet(sessions, directory / "whole.parquet")
    table = pq.read_table(directory / "whole.parquet")
    assert all(pa.types.is_string(field.type) for field in table.schema)
    rows = table.to_pylist()
    random.Random(seed).shuffle(rows)
    out = directory / "shards"
    out.mkdir()
    for index in range(shards):
        part = pa.Table.from_pylist(rows[index::shards], schema=table.schema)
        pq.write_table(part, out / f"train-{index:05d}.parquet")
    (directory / "whole.parquet").unlink()
    return out


def opera_row(session_id: str, action_id: str, timestamp: str | None, action_type: str, **columns) -> dict:
    row = dict.fromkeys(OPERA_COLUMNS)
    row.update(session_id=session_id, action_id=action_id, timestamp=timestamp, action_type=action_type,
               simplified_html=PAGE, url="https://www.shop.com/", window_size='{"width": 1920, "height": 934}')
    row.update(columns)
    return row


def write_rows(rows: list[dict], path: Path, seed: int = 1) -> Path:
    """Rows written with pandas as a real OPeRA shard is: string columns, shuffled order."""
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)
    frame.to_parquet(path, index=False)
    return path


# --- canonical JSONL --------------------------------------------------------------------------------


def test_canonical_jsonl_plain_and_gzip(real_sessions, tmp_path):
    plain = load_sessions(FIXTURE)
    assert plain == real_sessions and plain.format == "jsonl" and plain.path == FIXTURE
    write_jsonl(real_sessions, tmp_path / "s.jsonl.gz")
    assert load_sessions(tmp_path / "s.jsonl.gz") == real_sessions


def test_auto_detection_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="shop_env.loaders"):
        load_sessions(FIXTURE)
    assert f"{FIXTURE} read as 'jsonl'" in caplog.text


def test_a_bad_jsonl_line_names_the_file_and_line(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n\n" + '{"session_id": "x", "steps": [\n' + lines[1] + "\n", encoding="utf-8")
    with pytest.raises(SessionFormatError, match=rf"^{bad}:3: not valid JSON"):
        load_sessions(bad)


def test_unknown_action_types_in_jsonl_error_or_follow_the_callers_choice(tmp_path):
    session = {"session_id": "s", "steps": [
        {"observation": PAGE, "action": {"type": "scroll"}},
        {"observation": PAGE, "action": {"type": "click", "name": "header.logo"}},
    ]}
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(session) + "\n", encoding="utf-8")
    expected = rf"{path}:1, step 0, field 'action.type': unknown action type 'scroll'"
    with pytest.raises(SessionFormatError, match=expected):
        load_sessions(path)
    assert len(load_sessions(path, action_map={"scroll": None})[0]) == 1
    assert len(load_sessions(path, drop_unknown_actions=True)[0]) == 1
    renamed = load_sessions(path, action_map={"scroll": "terminate"})[0]
    assert [action.type for action in renamed.actions] == ["terminate", "click"]


def test_dropped_actions_are_logged_with_counts(tmp_path, caplog):
    session = {"session_id": "s", "steps": [
        {"observation": PAGE, "action": {"type": "scroll"}}, {"observation": PAGE, "action": {"type": "scroll"}},
        {"observation": PAGE, "action": {"type": "hover"}}, {"observation": PAGE, "action": {"type": "terminate"}},
    ]}
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(session) + "\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="shop_env.loaders"):
        load_sessions(path, drop_unknown_actions=True)
    assert "dropped actions as asked: hover x1, scroll x2" in caplog.text


def test_corrupt_gzip_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(gzip.compress(FIXTURE.read_bytes())[:200])
    with pytest.raises(SessionFormatError, match=rf"^{path}:1: cannot read this line: corrupt or truncated gzip"):
        load_sessions(path, format="jsonl")
    (tmp_path / "plain.jsonl.gz").write_bytes(FIXTURE.read_bytes())
    with pytest.raises(SessionFormatError, match=r"plain.jsonl.gz:1: cannot read this line: .*BadGzipFile"):
        load_sessions(tmp_path / "plain.jsonl.gz")


@pytest.mark.parametrize("kind", ["jsonl", "shopcart"])
def test_a_bad_byte_names_its_line(real_sessions, tmp_path, kind):
    if kind == "jsonl":
        lines = [json.dumps(session.to_dict()) for session in real_sessions]
    else:
        lines = [json.dumps(row) for row in shopcart_rows(real_sessions[0])]
    data = [line.encode("utf-8") for line in lines]
    data[1] = data[1][:30] + b"\xff" + data[1][30:]
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\n".join(data) + b"\n")
    with pytest.raises(SessionFormatError, match=rf"^{path}:2: not valid UTF-8 \(byte 31 of the line"):
        load_sessions(path, format=kind)


def test_an_empty_file_holds_no_sessions(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    assert load_sessions(tmp_path / "empty.jsonl") == []


# --- detection and arguments ---------------------------------------------------------------------------


def test_unknown_format_argument_lists_the_formats():
    with pytest.raises(ValueError, match="expected 'auto' or one of jsonl, opera, hf, shopcart"):
        load_sessions(FIXTURE, format="csv")
    assert FORMATS == ("jsonl", "opera", "hf", "shopcart")


def test_undetectable_inputs_say_what_was_found(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(SessionFormatError, match="cannot tell the format from the file name; formats: jsonl"):
        load_sessions(tmp_path / "data.csv")
    (tmp_path / "rows.jsonl").write_text('\n{"id": 1, "page": "x"}\n', encoding="utf-8")
    expected = r"rows.jsonl:2: cannot tell the format from the first row's keys \['id', 'page'\]"
    with pytest.raises(SessionFormatError, match=expected):
        load_sessions(tmp_path / "rows.jsonl")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(SessionFormatError, match="empty_dir: cannot tell the format of this directory"):
        load_sessions(tmp_path / "empty_dir")


def test_a_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        load_sessions(tmp_path / "nope.jsonl")


def test_explicit_format_on_the_wrong_kind_of_path(tmp_path):
    with pytest.raises(SessionFormatError, match="format 'jsonl' reads one file, got a directory"):
        load_sessions(tmp_path, format="jsonl")
    with pytest.raises(SessionFormatError, match="format 'shopcart' reads one JSON Lines file"):
        load_sessions(tmp_path, format="shopcart")
    with pytest.raises(SessionFormatError, match="no .parquet files in this directory"):
        load_sessions(tmp_path, format="opera")


# --- OPeRA parquet -----------------------------------------------------------------------------------


def test_done_when_jsonl_and_shuffled_string_parquet_shards_give_identical_sessions(real_sessions, tmp_path):
    shards = shuffled_string_shards(real_sessions, tmp_path)
    assert len(list(shards.glob("*.parquet"))) == 3
    loaded = load_sessions(shards)
    assert loaded.format == "opera"
    assert loaded == load_sessions(FIXTURE)
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in real_sessions]


def test_the_bundled_test_sessions_survive_shuffled_parquet_shards(tmp_path):
    sessions = bundled_sessions("test")
    assert load_sessions(shuffled_string_shards(sessions, tmp_path, shards=4, seed=5)) == sessions


def test_every_extra_and_empty_field_survives_the_parquet_round_trip(tmp_path):
    sessions = sessions_with_extras()
    path = write_opera_parquet(sessions, tmp_path / "one.parquet")
    loaded = load_sessions(path)
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in sessions]
    assert loaded[0].source is None and loaded[0].extra == {"cohort": 2, "tag": "x"}


def test_opera_split_shards_side_by_side_need_a_pattern(real_sessions, tmp_path):
    split_dir = tmp_path / "OPeRA_filtered" / "action"
    write_opera_parquet(real_sessions[:1], split_dir / "train-00000-of-00001.parquet")
    write_opera_parquet(real_sessions[1:], split_dir / "test-00000-of-00001.parquet")
    with pytest.raises(SessionFormatError, match=r"several splits \(test, train\); pass one split's shards as a pattern"):
        load_sessions(split_dir)
    assert load_sessions(split_dir / "train-*.parquet") == real_sessions[:1]
    assert load_sessions(split_dir / "test-*.parquet").format == "opera"
    with pytest.raises(SessionFormatError, match="no .parquet file matches this pattern"):
        load_sessions(split_dir / "validation-*.parquet")


def test_write_opera_parquet_shards_and_checks(tmp_path, real_sessions):
    out = write_opera_parquet(real_sessions, tmp_path / "dir", shards=2)
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert load_sessions(out) == real_sessions
    with pytest.raises(ValueError, match="shards must be >= 1, got 0"):
        write_opera_parquet(real_sessions, tmp_path / "x", shards=0)
    clash = Session("c", [Step(PAGE, Action("click", name="a"), extra={"semantic_id": "b"})])
    expected = "step 0, field 'semantic_id': session 'c': step extra key 'semantic_id' collides"
    with pytest.raises(SessionFormatError, match=expected):
        write_opera_parquet([clash], tmp_path / "clash.parquet")


def real_opera_rows() -> list[dict]:
    """Rows as the public dataset has them: no step index, mixed timestamp precision, mostly null rationale."""
    return [
        opera_row("u1_s1", "a3", "2025-04-14T21:53:10Z", "terminate"),
        opera_row("u1_s1", "a1", "2025-04-14T21:52:57.792Z", "input", semantic_id="nav_bar.search_input",
                  input_text="rice cooker", click_type=None, rationale="I need a rice cooker."),
        opera_row("u1_s1", "a2", "2025-04-14T21:52:59Z", "click", click_type="product_link",
                  semantic_id="4_stars_and_above.tiger_rice_cooker.product_title",
                  mouse_position='{"clientX": 1493}', element_meta='{"name": "promotion_items"}'),
        # Same second as a2 but later within it: string order would put it first.
        opera_row("u1_s1", "a2b", "2025-04-14T21:52:59.500Z", "click", semantic_id="product.add_to_cart"),
        # An earlier session, listed last: sessions come out by first timestamp.
        opera_row("u0_s9", "b2", "2025-03-01T10:00:01Z", "terminate"),
        opera_row("u0_s9", "b1", "2025-03-01T10:00:00Z", "click", semantic_id="nav_bar.homepage"),
    ]


def test_real_opera_rows_are_grouped_ordered_mapped_and_nothing_is_lost(tmp_path):
    loaded = load_sessions(write_rows(real_opera_rows(), tmp_path / "train-00000-of-00001.parquet"))
    assert [s.session_id for s in loaded] == ["u0_s9", "u1_s1"]
    session = loaded[1]
    assert session.source == "opera" and session.persona is None
    assert [str(a) for a in session.actions] == [
        "type_and_submit(nav_bar.search_input, 'rice cooker')",
        "click(4_stars_and_above.tiger_rice_cooker.product_title)",
        "click(product.add_to_cart)",
        "terminate()",
    ]
    first, second = session.steps[0], session.steps[1]
    assert first.rationale == "I need a rice cooker." and second.rationale is None
    assert first.timestamp == "2025-04-14T21:52:57.792Z" and first.url == "https://www.shop.com/"
    assert first.observation == PAGE
    assert second.extra == {
        "action_id": "a2", "click_type": "product_link", "mouse_position": '{"clientX": 1493}',
        "element_meta": '{"name": "promotion_items"}', "window_size": '{"width": 1920, "height": 934}',
    }


def test_ties_in_timestamp_are_broken_by_action_id(tmp_path):
    rows = [opera_row("s", "b", "2025-04-14T21:52:57Z", "terminate"),
            opera_row("s", "a", "2025-04-14T21:52:57Z", "click", semantic_id="x")]
    session = load_sessions(write_rows(rows, tmp_path / "t.parquet"))[0]
    assert [a.type for a in session.actions] == ["click", "terminate"]


def full_action_rows() -> list[dict]:
    return [
        opera_row("s", "1", "2025-04-14T21:00:00Z", "click", semantic_id="nav_bar.deals"),
        opera_row("s", "2", "2025-04-14T21:00:01Z", "scroll", scroll_detail='{"dy": 400}'),
        opera_row("s", "3", "2025-04-14T21:00:02Z", "navigation", navigation_type="back"),
        opera_row("s", "4", "2025-04-14T21:00:03Z", "scroll"),
        opera_row("s", "5", "2025-04-14T21:00:04Z", "tab_activate", semantic_id="tab.cart"),
        opera_row("s", "6", "2025-04-14T21:00:05Z", "terminate"),
    ]


def test_full_action_types_are_an_error_naming_them_and_the_fix(tmp_path):
    path = write_rows(full_action_rows(), tmp_path / "full.parquet")
    with pytest.raises(SessionFormatError) as error:
        load_sessions(path)
    message = str(error.value)
    assert message.startswith(f"{path} row ") and "field 'action_type'" in message
    for kind, count in (("scroll", 2), ("navigation", 1), ("tab_activate", 1)):
        assert f"'{kind}' x{count} (first at {path} row " in message
    assert "expected one of click, input, terminate" in message
    assert "action_map={'navigation': None, 'scroll': None, 'tab_activate': None}" in message
    assert "drop_unknown_actions=True" in message


def test_full_action_types_can_be_dropped_or_mapped(tmp_path, caplog):
    path = write_rows(full_action_rows(), tmp_path / "full.parquet")
    with caplog.at_level(logging.INFO, logger="shop_env.loaders"):
        dropped = load_sessions(path, drop_unknown_actions=True)[0]
    assert [a.type for a in dropped.actions] == ["click", "terminate"]
    assert "navigation x1, scroll x2, tab_activate x1" in caplog.text
    mapped = load_sessions(path, action_map={"scroll": None, "navigation": None, "tab_activate": "click"})[0]
    assert [str(a) for a in mapped.actions] == ["click(nav_bar.deals)", "click(tab.cart)", "terminate()"]
    assert mapped.steps[1].extra["source_action_type"] == "tab_activate"


def test_a_mapping_to_an_unknown_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match="action_map maps 'scroll' to 'swipe'; map to one of click"):
        load_sessions(write_rows(full_action_rows(), tmp_path / "f.parquet"), action_map={"scroll": "swipe"})


def test_a_session_of_only_dropped_actions_is_an_error_as_in_jsonl(tmp_path):
    """It used to vanish with an info-level log line; JSONL and Shop-CART rows refuse it too."""
    rows = full_action_rows() + [opera_row("only_scrolls", "9", "2025-04-14T22:00:00Z", "scroll")]
    path = write_rows(rows, tmp_path / "f.parquet")
    expected = (r"row \d+, field 'action_type': session 'only_scrolls': every action was dropped \(scroll x1\).*"
                r"map one of these types to a kept one \(action_map\) or remove the session")
    with pytest.raises(SessionFormatError, match=expected):
        load_sessions(path, drop_unknown_actions=True)
    kept = load_sessions(path, action_map={"scroll": "terminate"}, drop_unknown_actions=True)
    assert [s.session_id for s in kept] == ["s", "only_scrolls"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"semantic_id": None},
            r"step 0, field 'semantic_id': session 's': click action: expected a string, got NoneType",
        ),
        ({"semantic_id": "  "}, r"field 'semantic_id': session 's': click action: expected a non-empty string"),
        (
            {"simplified_html": None},
            r"step 0, field 'simplified_html': session 's': expected the page's simplified HTML",
        ),
        ({"timestamp": "yesterday"}, r"field 'timestamp': expected an ISO 8601 timestamp .* got 'yesterday'"),
        ({"timestamp": None}, r"field 'timestamp': expected an ISO timestamp string to order the session by"),
        ({"session_id": ""}, r"field 'session_id': expected a non-empty session_id string"),
    ],
)
def test_a_corrupt_opera_row_names_file_row_session_and_column(tmp_path, change, expected):
    rows = [opera_row("s", "1", "2025-04-14T21:00:00Z", "click", semantic_id="nav_bar.deals") | change,
            opera_row("s", "2", "2025-04-14T21:00:05Z", "terminate")]
    path = write_rows(rows, tmp_path / "bad.parquet", seed=0)
    with pytest.raises(SessionFormatError, match=rf"^{path} row \d+.*{expected}"):
        load_sessions(path)


def test_input_without_text_is_an_error_on_input_text(tmp_path):
    rows = [opera_row("s", "1", "2025-04-14T21:00:00Z", "input", semantic_id="nav_bar.search_input")]
    with pytest.raises(SessionFormatError, match="field 'input_text': session 's': input action: expected a string"):
        load_sessions(write_rows(rows, tmp_path / "i.parquet"))


def test_duplicate_rows_cannot_be_ordered(tmp_path):
    rows = [opera_row("s", "1", "2025-04-14T21:00:00Z", "terminate")] * 2
    with pytest.raises(SessionFormatError, match="have the same position .* cannot order the session"):
        load_sessions(write_rows(rows, tmp_path / "d.parquet"))


def test_opera_schema_problems_name_the_file_and_columns(tmp_path):
    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"session_id": ["s"], "action_type": ["click"]}), missing)
    expected = rf"^{missing}: missing OPeRA column\(s\) timestamp, simplified_html"
    with pytest.raises(SessionFormatError, match=expected):
        load_sessions(missing)
    typed = tmp_path / "typed.parquet"
    frame = pd.DataFrame([opera_row("s", "1", "2025-04-14T21:00:00Z", "terminate")])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame.to_parquet(typed, index=False)
    with pytest.raises(SessionFormatError, match=r"column 'timestamp' has type timestamp.*cast it to string"):
        load_sessions(typed)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(SessionFormatError, match=rf"^{junk}: not a readable parquet file"):
        load_sessions(junk)


def test_session_level_columns_must_agree_between_rows(tmp_path):
    sessions = sessions_with_extras()
    path = write_opera_parquet(sessions, tmp_path / "p.parquet")
    table = pq.read_table(path).to_pylist()
    table[1]["persona"] = "Someone else."
    pq.write_table(pa.Table.from_pylist(table), path)
    with pytest.raises(SessionFormatError, match="'persona' differs between its rows"):
        load_sessions(path)


# --- Hugging Face datasets ---------------------------------------------------------------------------


def test_hf_dataset_with_opera_columns(tmp_path):
    import datasets

    datasets.Dataset.from_list(real_opera_rows()).save_to_disk(str(tmp_path / "opera_hf"))
    loaded = load_sessions(tmp_path / "opera_hf")
    assert loaded.format == "hf"
    assert loaded == load_sessions(write_rows(real_opera_rows(), tmp_path / "same.parquet"))


def test_hf_dataset_with_canonical_columns_and_its_arrow_file(real_sessions, tmp_path):
    import datasets

    datasets.Dataset.from_list([s.to_dict() for s in real_sessions]).save_to_disk(str(tmp_path / "canon"))
    assert load_sessions(tmp_path / "canon") == real_sessions
    arrow = next((tmp_path / "canon").glob("*.arrow"))
    assert detect_format(arrow) == "hf"
    assert load_sessions(arrow) == real_sessions


def test_hf_dataset_with_shopcart_columns(real_sessions, tmp_path):
    import datasets

    rows = [row for session in real_sessions for row in shopcart_rows(session)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "sc"))
    assert load_sessions(tmp_path / "sc") == real_sessions


def test_hf_dataset_dict_asks_for_one_split(real_sessions, tmp_path):
    import datasets

    split = datasets.Dataset.from_list([s.to_dict() for s in real_sessions])
    datasets.DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(SessionFormatError, match=r"DatasetDict with splits test, train: pass one split's directory"):
        load_sessions(tmp_path / "dd")
    assert load_sessions(tmp_path / "dd" / "train") == real_sessions


def test_hf_rows_errors_name_the_dataset_row(tmp_path):
    import datasets

    rows = [{"session_id": "s", "steps": [{"observation": PAGE, "action": {"type": "click", "name": ""}}]}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "bad"))
    expected = r"bad row 0, step 0, field 'action.name': expected a non-empty string"
    with pytest.raises(SessionFormatError, match=expected):
        load_sessions(tmp_path / "bad")


# --- Shop-CART rows ------------------------------------------------------------------------------------


def write_shopcart(rows: list[dict], path: Path, seed: int | None = 0) -> Path:
    rows = list(rows)
    if seed is not None:
        random.Random(seed).shuffle(rows)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_shopcart_rows_reassemble_into_the_sessions(real_sessions, tmp_path):
    rows = [row for session in real_sessions for row in shopcart_rows(session)]
    in_order = load_sessions(write_shopcart(rows, tmp_path / "rows.jsonl", seed=None))
    assert in_order.format == "shopcart"
    assert in_order == real_sessions
    shuffled = load_sessions(write_shopcart(rows, tmp_path / "shuffled.jsonl", seed=3))
    assert sorted(shuffled, key=lambda s: s.session_id) == sorted(real_sessions, key=lambda s: s.session_id)
    extras = sessions_with_extras()
    path = write_shopcart(shopcart_rows(extras[0]), tmp_path / "extras.jsonl")
    assert [s.to_dict() for s in load_sessions(path)] == [extras[0].to_dict()]


def test_shopcart_action_json_text_and_latest_step_context(tmp_path):
    rows = [
        {"session_id": "s", "step": 0, "observation": PAGE, "action": '{"type": "click", "name": "header.logo"}'},
        {"session_id": "s", "step": 1, "observation": PAGE, "action": '{"type": "terminate"}',
         "context": [{"action": '{"type": "click", "name": "header.logo"}'}], "rationale": "Done."},
    ]
    session = load_sessions(write_shopcart(rows, tmp_path / "r.jsonl"))[0]
    assert [str(a) for a in session.actions] == ["click(header.logo)", "terminate()"]
    assert session.steps[1].rationale == "Done."


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda rows: rows.pop(1), r"session 'opera-like-0001' lacks the row\(s\) for step\(s\) 1"),
        (
            lambda rows: rows.append(dict(rows[0])),
            r"step 0, field 'step': session 'opera-like-0001' has step 0 twice",
        ),
        (lambda rows: rows[2]["context"][0].update(observation="<html>other</html>"),
         r":3, step 2, field 'context\[0\].observation': session 'opera-like-0001': this page differs"),
        (lambda rows: rows[2]["context"][1].update(action={"type": "terminate"}),
         r":3, step 2, field 'context\[1\].action': .* differs from the action of step 1"),
        (
            lambda rows: rows[2]["context"].pop(),
            r"field 'context': .* context holds 1 earlier step\(s\) but this is step 2",
        ),
        (
            lambda rows: rows[1].update(action='{"type": "click",'),
            r":2, step 1, field 'action': action is a string but not valid JSON",
        ),
        (
            lambda rows: rows[1].update(step="1"),
            r":2, field 'step': expected the step's 0-based index as an integer, got '1'",
        ),
        (lambda rows: rows[1].update(persona="Other"), r"'persona' differs between its rows"),
        (
            lambda rows: rows[1].update(action={"type": "click"}),
            r":2, step 1, field 'action.name': .*expected a string",
        ),
    ],
)
def test_shopcart_errors_name_the_line_step_and_field(real_sessions, tmp_path, edit, expected):
    rows = shopcart_rows(real_sessions[0])
    edit(rows)
    path = write_shopcart(rows, tmp_path / "rows.jsonl", seed=None)
    with pytest.raises(SessionFormatError, match=expected):
        load_sessions(path)


# --- bundled sessions and resolve_sessions ------------------------------------------------------------


@pytest.fixture
def fake_repo(tmp_path, monkeypatch, real_sessions) -> Path:
    """A repo root whose assets hold the fixture sessions as the train split."""
    monkeypatch.setattr(loaders.bundled, "assets_dir", lambda: tmp_path / "assets")
    write_jsonl(real_sessions, tmp_path / "assets" / "sessions_train.jsonl.gz")
    return tmp_path


def test_bundled_sessions_are_cached_and_every_call_gets_its_own_copy(fake_repo, real_sessions):
    first = bundled_sessions("train")
    assert first == real_sessions and isinstance(first, list)
    first[0].steps[0].extra["note"] = "changed"
    first[0].steps[0].rationale = "changed"
    first[0].extra["note"] = "changed"
    first[1].steps.clear()
    first.clear()
    hits = loaders.bundled._parsed_bundle.cache_info().hits
    assert bundled_sessions("train") == real_sessions
    assert loaders.bundled._parsed_bundle.cache_info().hits == hits + 1


def test_bundled_sessions_are_read_again_when_the_file_changes(fake_repo, real_sessions):
    assert len(bundled_sessions("train")) == len(real_sessions)
    write_jsonl(real_sessions[:1], fake_repo / "assets" / "sessions_train.jsonl.gz")
    assert bundled_sessions("train") == real_sessions[:1]


def test_bundled_sessions_errors(fake_repo):
    with pytest.raises(ValueError, match="unknown bundled split 'dev'; expected one of train, test"):
        bundled_sessions("dev")
    with pytest.raises(FileNotFoundError, match=r"sessions_test.jsonl.gz: the installation lacks its data files; reinstall shop-r1, or regenerate them with `shop-r1 make-sessions"):
        bundled_sessions("test")


def test_resolve_sessions_accepts_bundled_paths_and_lists(fake_repo, real_sessions, tmp_path):
    assert resolve_sessions("bundled:train") == real_sessions
    assert resolve_sessions(str(FIXTURE)) == real_sessions
    assert resolve_sessions(FIXTURE) == real_sessions
    given = list(real_sessions)
    resolved = resolve_sessions(given)
    assert resolved == given and resolved is not given


def test_resolve_sessions_errors(fake_repo, real_sessions, tmp_path):
    with pytest.raises(ValueError, match="unknown bundled split 'dev'"):
        resolve_sessions("bundled:dev")
    with pytest.raises(TypeError, match=r"sessions\[1\] is a dict, expected a Session"):
        resolve_sessions([real_sessions[0], {"session_id": "x"}])
    expected = "expected 'bundled:train', 'bundled:test', a path or a list of Session, got int"
    with pytest.raises(TypeError, match=expected):
        resolve_sessions(3)  # type: ignore[arg-type]
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no sessions in .*empty.jsonl"):
        resolve_sessions(tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="no sessions in the given list"):
        resolve_sessions([])


# --- convert_sessions and `shop-r1 convert` -------------------------------------------------------------


def test_convert_sessions_between_every_written_format(real_sessions, tmp_path):
    from shop_env.loaders import convert_sessions

    done = convert_sessions(FIXTURE, tmp_path / "s.parquet")
    assert done == {
        "source": str(FIXTURE), "source_format": "jsonl", "destination": str(tmp_path / "s.parquet"),
        "format": "opera", "sessions": len(real_sessions), "steps": sum(map(len, real_sessions)),
    }
    convert_sessions(tmp_path / "s.parquet", tmp_path / "rows.jsonl", to="shopcart")
    convert_sessions(tmp_path / "rows.jsonl", tmp_path / "back.jsonl.gz")
    convert_sessions(tmp_path / "back.jsonl.gz", tmp_path / "parts", shards=2)
    assert load_sessions(tmp_path / "rows.jsonl").format == "shopcart"
    assert load_sessions(tmp_path / "back.jsonl.gz") == real_sessions == load_sessions(tmp_path / "parts")
    with pytest.raises(ValueError, match="unknown output format 'csv'; expected one of jsonl, opera, shopcart"):
        convert_sessions(FIXTURE, tmp_path / "x.csv", to="csv")
    with pytest.raises(ValueError, match="shards=2 applies to opera parquet output only, not 'jsonl'"):
        convert_sessions(FIXTURE, tmp_path / "x.jsonl", to="jsonl", shards=2)


def test_cli_convert_maps_types_and_reports_bad_input(tmp_path):
    from typer.testing import CliRunner

    from shop_r1.cli import app

    source = write_rows(full_action_rows(), tmp_path / "full.parquet")
    runner = CliRunner()
    result = runner.invoke(
        app, ["convert", str(source), str(tmp_path / "out.jsonl"), "--map", "scroll=", "--map", "navigation=",
              "--map", "tab_activate=click"],
    )
    assert result.exit_code == 0, result.output
    assert "Read 1 sessions (3 steps)" in " ".join(result.output.split())
    assert [str(a) for a in load_sessions(tmp_path / "out.jsonl")[0].actions] == [
        "click(nav_bar.deals)", "click(tab.cart)", "terminate()",
    ]
    refused = runner.invoke(app, ["convert", str(source), str(tmp_path / "o.jsonl")])
    assert refused.exit_code == 2 and "action types outside the paper's action space" in " ".join(refused.output.split())
    bad_map = runner.invoke(app, ["convert", str(source), str(tmp_path / "o.jsonl"), "--map", "scroll"])
    assert bad_map.exit_code == 2 and "expected TYPE=TARGET" in bad_map.output
    missing = runner.invoke(app, ["convert", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl")])
    assert missing.exit_code == 2 and "no such file or directory" in " ".join(missing.output.split())
