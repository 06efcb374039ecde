"""Hugging Face `datasets` datasets on local disk (a `save_to_disk` directory or a cached `.arrow` file)
whose columns are canonical sessions, Shop-CART rows or OPeRA's. Never downloads."""

from __future__ import annotations

from pathlib import Path

from shop_env.loaders.action_types import ActionTypes
from shop_env.loaders.opera import check_opera_columns, sessions_from_opera_rows
from shop_env.loaders.shopcart import sessions_from_shopcart_rows
from shop_env.session import DistinctIds, Session, SessionFormatError


def read_hf_dataset(path: Path, types: ActionTypes) -> list[Session]:
    """A local `datasets` dataset: rows in OPeRA, canonical or Shop-CART columns (never downloads)."""
    try:
        import datasets
    except ImportError:
        raise ImportError("format 'hf' needs the datasets package: pip install datasets") from None

    if path.is_file():
        try:
            dataset = datasets.Dataset.from_file(str(path))
        except (ValueError, OSError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise SessionFormatError(
                f"not an Arrow file of a datasets dataset ({type(err).__name__}: {err}); format 'hf' reads a "
                "save_to_disk directory or its .arrow files: for JSON Lines pass format 'jsonl' or 'shopcart' "
                "(--from jsonl / --from shopcart), or 'auto'",
                file=path,
            ) from None
    else:
        try:
            dataset = datasets.load_from_disk(str(path))
        except FileNotFoundError as err:
            raise SessionFormatError(
                f"not a datasets save_to_disk directory ({err}); for a cache directory pass its .arrow file",
                file=path,
            ) from None
        except (ValueError, OSError) as err:
            raise SessionFormatError(
                f"a datasets directory that cannot be read ({type(err).__name__}: {err}); save it again with "
                "Dataset.save_to_disk",
                file=path,
            ) from None
        if isinstance(dataset, datasets.DatasetDict):
            raise SessionFormatError(
                f"a DatasetDict with splits {', '.join(dataset)}: pass one split's directory, "
                f"e.g. {path / next(iter(dataset), 'train')}",
                file=path,
            )
    columns = set(dataset.column_names)
    rows = ((f"{path} row {index}", row) for index, row in enumerate(dataset))
    if "steps" in columns:
        sessions, distinct = [], DistinctIds()
        for location, row in rows:
            try:
                session = Session.from_dict(row, map_type=types.resolve)
            except SessionFormatError as err:
                raise err.located(file=location) from None
            distinct.check(session.session_id, location, file=location)
            sessions.append(session)
        return sessions
    if "step" in columns and "observation" in columns:
        return sessions_from_shopcart_rows(rows, types)
    check_opera_columns(sorted(columns), path)
    return sessions_from_opera_rows(rows, types)
