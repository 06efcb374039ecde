"""The canonical session model: validation, located errors, lossless JSON Lines round trips."""

import gzip
import json

import pytest

from shop_env.atomic_io import append_jsonl, read_jsonl_records, write_json
from shop_env.session import ACTION_TYPES, Action, Session, SessionFormatError, Step, read_jsonl, write_jsonl


def make_row(session_id="s-001", **extra):
    return {
        "session_id": session_id,
        "source": "synthetic",
        "persona": "A runner on a budget.",
        "steps": [
            {
                "observation": '<html><input name="header.search_box.search_input"/></html>',
                "url": "https://shop.example/",
                "action": {"type": "type_and_submit", "name": "header.search_box.search_input", "text": "running shoes"},
                "rationale": "I want new running shoes.",
                "timestamp": "2025-04-14T21:52:57.792Z",
                "scroll_y": 120,
            },
            {
                "observation": "<html><button name='search_results.a.view_product'>A</button></html>",
                "url": None,
                "action": {"type": "click", "name": "search_results.a.view_product", "click_type": "left"},
                "rationale": None,
                "timestamp": None,
            },
            {"observation": "<html></html>", "url": None, "action": {"type": "terminate"}, "rationale": "Done.", "timestamp": None},
        ],
        **extra,
    }


def write_lines(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_round_trip_keeps_extra_keys(tmp_path):
    row = make_row(device="mobile")
    source = write_lines(tmp_path / "in.jsonl", [row])
    sessions = read_jsonl(source)
    assert sessions[0].extra == {"device": "mobile"}
    assert sessions[0].steps[0].extra == {"scroll_y": 120}
    assert sessions[0].steps[1].action.extra == {"click_type": "left"}
    out = write_jsonl(sessions, tmp_path / "out.jsonl.gz")
    with gzip.open(out, "rt") as handle:
        assert json.loads(handle.readline()) == row
    assert read_jsonl(out) == sessions


def test_actions_and_str():
    assert [step.action.type for step in Session.from_dict(make_row()).steps] == ["type_and_submit", "click", "terminate"]
    assert set(ACTION_TYPES) == {"click", "type_and_submit", "terminate"}
    assert str(Action("click", name="a.b")) == "click(a.b)"
    assert Action("terminate").to_dict() == {"type": "terminate"}
    assert Action.from_dict({"type": "terminate", "name": None, "text": ""}) == Action("terminate")


@pytest.mark.parametrize(
    "mutate, step, field, message",
    [
        (lambda r: r["steps"][1]["action"].update(type="scroll"), 1, "action.type", "click, type_and_submit, terminate"),
        (lambda r: r["steps"][1]["action"].pop("name"), 1, "action.name", "expected a string"),
        (lambda r: r["steps"][1]["action"].update(name="  "), 1, "action.name", "non-empty"),
        (lambda r: r["steps"][0]["action"].update(text=5), 0, "action.text", "got int"),
        (lambda r: r["steps"][2]["action"].update(name="x"), 2, "action.name", "takes no 'name'"),
        (lambda r: r["steps"][1].pop("observation"), 1, "observation", "missing"),
        (lambda r: r["steps"][1].update(observation=None), 1, "observation", "expected a string"),
        (lambda r: r["steps"][1].update(rationale=["x"]), 1, "rationale", "got list"),
    ],
)
def test_bad_step_errors_name_file_line_step_field(tmp_path, mutate, step, field, message):
    good, bad = make_row("ok"), make_row("bad")
    mutate(bad)
    path = write_lines(tmp_path / "data.jsonl", [good, bad])
    with pytest.raises(SessionFormatError) as info:
        read_jsonl(path)
    err = info.value
    assert (err.file, err.line, err.step, err.field) == (str(path), 2, step, field)
    assert f"{path}:2" in str(err) and message in str(err)


@pytest.mark.parametrize(
    "row, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object per line"),
        (json.dumps({"session_id": "", "steps": []}), "non-empty"),
        (json.dumps({"session_id": "x", "steps": []}), "at least one step"),
        (json.dumps({"session_id": "x", "steps": {}}), "expected a list of steps"),
    ],
)
def test_bad_line_errors(tmp_path, row, message):
    path = write_lines(tmp_path / "data.jsonl", [make_row(), "", row])
    with pytest.raises(SessionFormatError, match=message) as info:
        read_jsonl(path)
    assert info.value.line == 3 and str(info.value).startswith(f"{path}:3")


def test_duplicate_session_ids_are_an_error(tmp_path):
    path = write_lines(tmp_path / "data.jsonl", [make_row("a"), make_row("a")])
    with pytest.raises(SessionFormatError, match="duplicate session_id 'a' \\(first on line 1\\)"):
        read_jsonl(path)


def test_a_type_mapping_renames_or_drops_before_validation(tmp_path):
    row = make_row()
    row["steps"].insert(1, {"observation": "<html/>", "action": {"type": "scroll"}})
    path = write_lines(tmp_path / "data.jsonl", [row])
    assert len(read_jsonl(path, map_type=lambda kind: None if kind == "scroll" else kind)[0]) == 3
    mapped = read_jsonl(path, map_type=lambda kind: "terminate" if kind == "scroll" else kind)[0]
    assert [a.type for a in mapped.actions] == ["type_and_submit", "terminate", "click", "terminate"]


def test_atomic_writes_leave_no_temp_files(tmp_path):
    write_json(tmp_path / "m.json", {"a": 1})
    with pytest.raises(TypeError):
        write_json(tmp_path / "m.json", {"a": object()})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_permissions_open_would_give(tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        with open(tmp_path / "plain.json", "w") as handle:
            handle.write("{}")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "m.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o666 & ~umask


def test_append_log_tolerates_only_a_torn_last_line(tmp_path):
    log = tmp_path / "metrics.jsonl"
    append_jsonl(log, {"step": 1})
    append_jsonl(log, {"step": 2})
    with open(log, "a") as handle:
        handle.write('{"step": 3, "rew')
    assert read_jsonl_records(log) == [{"step": 1}, {"step": 2}]
    log.write_text('{"step": 1}\n{broken\n{"step": 3}\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        read_jsonl_records(log)


def test_step_and_session_to_dict_are_canonical():
    session = Session("s", [Step("<p/>", Action("terminate"))])
    assert session.to_dict() == {
        "session_id": "s",
        "source": None,
        "persona": None,
        "steps": [{"observation": "<p/>", "url": None, "action": {"type": "terminate"}, "rationale": None, "timestamp": None}],
    }
