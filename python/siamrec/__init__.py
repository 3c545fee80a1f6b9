"""siamrec: Siamese neural network recommenders, from Python.

The C++ engine of the ``siamrec`` command line, on your own data (pandas, numpy, scipy) or on the
registered datasets, with the same configs, model files and evaluation protocols::

    import siamrec
    split = siamrec.Dataset.load("ml-100k", split="ua")
    model = siamrec.Model("examples/configs/ml100k-cml.yaml", **{"train.epochs": 5})
    model.fit(split.train)
    print(model.evaluate(split.test))          # metrics, with the protocol they were measured under
    items, scores = model.recommend([1, 2], k=10)
    model.save("cml.model")                    # the file `siamrec recommend --model` reads

Ids: datasets keep the original ids; every method takes and returns them (numpy int64 arrays when
every id is an integer, else object arrays of str).
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._core import ConfigError, DataError, Error, MissingDataError

__version__ = _core.__version__
__all__ = [
    "Dataset",
    "Split",
    "Model",
    "Evaluation",
    "load",
    "Error",
    "ConfigError",
    "DataError",
    "MissingDataError",
    "registered_datasets",
    "registered_models",
    "resolve_config",
    "set_log_level",
    "report",
]


# ---- configuration ---------------------------------------------------------------------------


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(_value_text(x) for x in v)
    return str(v)


def _overrides(pairs: Optional[Dict[str, Any]]) -> List[str]:
    """{"train.lr": 0.002} -> ["train.lr=0.002"] (the command line's --set)."""
    out = []
    for k, v in (pairs or {}).items():
        if not isinstance(k, str) or not k:
            raise ConfigError(f"config override key {k!r}: expected a 'section.key' string")
        out.append(f"{k}={_value_text(v)}")
    return out


def _config_source(config: Any) -> Tuple[str, str]:
    """A config as (file, yaml text): a path to a YAML file, YAML text, or a nested dict."""
    if config is None:
        return "", ""
    if isinstance(config, dict):
        # JSON is YAML: nested sections become YAML mappings.
        return "", json.dumps(config)
    if isinstance(config, os.PathLike):
        config = os.fspath(config)
    if not isinstance(config, str):
        raise ConfigError(f"config: expected a YAML path, YAML text or a dict, got {type(config).__name__}")
    text = config.strip()
    looks_like_path = "\n" not in text and (text.endswith((".yaml", ".yml")) or ":" not in text)
    if looks_like_path:
        if not os.path.exists(text):
            raise FileNotFoundError(f"config file '{text}' does not exist")
        if os.path.isdir(text):
            raise ConfigError(f"config file '{text}' is a directory")
        return text, ""
    return "", config


def resolve_config(config: Any = None, **overrides: Any) -> str:
    """The fully resolved config (every key with its value) as YAML; raises ConfigError naming a bad key."""
    f, y = _config_source(config)
    return _core.resolve_config(f, y, _overrides(overrides))


def set_log_level(level: str) -> None:
    """What the engine logs to stderr: "debug", "info" (the CLI's default), "warn" (default here), "error", "off"."""
    _core.set_log_level(level)


def registered_datasets() -> List[str]:
    return _core.Dataset.registered()


def registered_models() -> List[str]:
    return _core.Model.registered()


# ---- ids -------------------------------------------------------------------------------------


def _as_id_array(ids: Any) -> np.ndarray:
    if isinstance(ids, (str, bytes, int, np.integer)):
        return np.asarray([ids], dtype=object if isinstance(ids, (str, bytes)) else np.int64)
    if isinstance(ids, np.ndarray):
        return ids
    if hasattr(ids, "to_numpy"):  # pandas Series / Index
        return ids.to_numpy()
    ids = list(ids)
    if ids and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in ids):
        return np.asarray(ids, dtype=np.int64)
    return np.asarray(ids, dtype=object)


def _scalar(x: Any) -> bool:
    return isinstance(x, (str, bytes, int, np.integer))


# ---- datasets --------------------------------------------------------------------------------


class Split:
    """The parts of a split: train, valid (may be empty) and test share one id space."""

    def __init__(self, train: "Dataset", valid: "Dataset", test: "Dataset", protocol: str):
        self.train, self.valid, self.test, self.protocol = train, valid, test, protocol

    def __iter__(self):
        return iter((self.train, self.valid, self.test))

    def __repr__(self) -> str:
        return (
            f"Split(train={self.train.size}, valid={self.valid.size}, test={self.test.size} interactions; "
            f"{self.protocol})"
        )


def _split_overrides(split: Any, kw: Dict[str, Any]) -> List[str]:
    pairs: Dict[str, Any] = {}
    if isinstance(split, str):
        # A shipped split by name ("ua", "u1", "ncf") or a split type ("ratio", "loo", ...).
        if split in ("ratio", "loo", "temporal", "cold_items", "fixed"):
            pairs["split.type"] = split
        else:
            pairs["split.type"] = "fixed"
            pairs["split.name"] = split
    elif isinstance(split, dict):
        for k, v in split.items():
            pairs[k if k.startswith(("split.", "filter.")) else "split." + k] = v
    elif split is not None:
        raise ConfigError(f"split: expected a name, a type or a dict, got {type(split).__name__}")
    for k, v in kw.items():
        pairs[k if k.startswith(("split.", "filter.")) else "split." + k] = v
    return _overrides(pairs)


class _IdTables:
    """What datasets and models share: the id space and its original ids (cached numpy arrays)."""

    _core: Any
    _user_ids: Optional[np.ndarray] = None
    _item_ids: Optional[np.ndarray] = None

    @property
    def n_users(self) -> int:
        """Users in the id space."""
        return self._core.n_users

    @property
    def n_items(self) -> int:
        """Items in the id space."""
        return self._core.n_items

    @property
    def user_ids(self) -> np.ndarray:
        """Original user ids by dense index (int64 when every id is an integer, else str objects)."""
        if self._user_ids is None:
            self._user_ids = self._core.user_ids()
        return self._user_ids

    @property
    def item_ids(self) -> np.ndarray:
        """Original item ids by dense index (int64 when every id is an integer, else str objects)."""
        if self._item_ids is None:
            self._item_ids = self._core.item_ids()
        return self._item_ids


class Dataset(_IdTables):
    """Interactions over one id space (original ids kept both ways).

    Make one with :meth:`load` (a registered dataset), :meth:`from_pandas`, :meth:`from_arrays`,
    :meth:`from_csr` or :meth:`from_config`; :meth:`split` makes train / valid / test parts.
    """

    def __init__(self, core: "_core.Dataset"):
        self._core = core
        self._user_ids: Optional[np.ndarray] = None
        self._item_ids: Optional[np.ndarray] = None

    # -- construction --
    @staticmethod
    def load(
        name: str,
        split: Any = None,
        data_dir: Optional[str] = None,
        skip_bad_lines: bool = False,
        use_cache: bool = True,
        **split_options: Any,
    ) -> Union["Dataset", Split]:
        """A registered dataset (``siamrec.registered_datasets()``) from ``$SIAMREC_DATA_DIR``.

        With ``split`` (a shipped split name such as ``"ua"``, a split type such as ``"loo"``, or a
        dict of split keys) it returns the :class:`Split` instead of the whole dataset.
        Raises MissingDataError (a FileNotFoundError) saying where it looked when it is not there.
        """
        ds = Dataset(_core.Dataset.load(name, data_dir or "", skip_bad_lines, use_cache))
        if split is None and not split_options:
            return ds
        return ds.split(split, **split_options)

    @staticmethod
    def from_config(config: Any, data_dir: Optional[str] = None, skip_bad_lines: bool = False, **overrides: Any):
        """The data section of a config (a registered dataset, or own files with data.path / data.format)."""
        f, y = _config_source(config)
        return Dataset(_core.Dataset.from_config(f, y, _overrides(overrides), data_dir or "", skip_bad_lines))

    @staticmethod
    def from_arrays(
        users: Any,
        items: Any,
        ratings: Any = None,
        timestamps: Any = None,
        name: str = "arrays",
    ) -> "Dataset":
        """Interactions from parallel arrays of original ids (integers or strings).

        Duplicate (user, item) rows are merged as the file readers merge them (the latest kept).
        ``timestamps`` are seconds since 1970 (numpy datetime64 values are converted).
        Raises DataError naming the array and row of a bad value (missing id, NaN rating, ...).
        """
        if timestamps is not None:
            ts = np.asarray(timestamps)
            if np.issubdtype(ts.dtype, np.datetime64):
                if np.isnat(ts).any():
                    raise DataError(f"{name}: timestamps[{int(np.argmax(np.isnat(ts)))}]: missing time (NaT)")
                timestamps = ts.astype("datetime64[s]").astype(np.int64)
        return Dataset(_core.Dataset.from_arrays(_as_id_array(users), _as_id_array(items), ratings, timestamps, name))

    @staticmethod
    def from_pandas(
        df: Any,
        user: str = "userId",
        item: str = "movieId",
        rating: Optional[str] = None,
        timestamp: Optional[str] = None,
        name: str = "dataframe",
    ) -> "Dataset":
        """Interactions from a pandas DataFrame's columns (ids may be integers or strings)."""
        cols = [c for c in (user, item, rating, timestamp) if c is not None]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ConfigError(
                f"from_pandas: column(s) {', '.join(map(repr, missing))} not in the DataFrame "
                f"(columns: {', '.join(map(str, df.columns))})"
            )
        return Dataset.from_arrays(
            df[user].to_numpy(),
            df[item].to_numpy(),
            None if rating is None else df[rating].to_numpy(),
            None if timestamp is None else df[timestamp].to_numpy(),
            name,
        )

    @staticmethod
    def from_csr(matrix: Any, implicit: Optional[bool] = None, name: str = "csr") -> "Dataset":
        """A users x items scipy.sparse matrix: row r is user id r, column c item id c.

        Stored values are ratings unless ``implicit`` (default: implicit when every value is 1);
        stored zeros count as interactions. Rows and columns without entries are not in the dataset.
        """
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise DataError(f"{name}: expected a scipy.sparse matrix, got {type(matrix).__name__}")
        coo = matrix.tocoo()
        if coo.nnz == 0:
            raise DataError(f"{name}: the matrix has no stored entries")
        values = np.asarray(coo.data, dtype=np.float64)
        if implicit is None:
            implicit = bool(np.all(values == 1))
        return Dataset.from_arrays(
            coo.row.astype(np.int64), coo.col.astype(np.int64), None if implicit else values.astype(np.float32),
            None, name
        )

    # -- parts --
    def split(self, split: Any = None, config: Any = None, **options: Any) -> Split:
        """Train / valid / test parts, as a config's split section makes them (seeded).

        ``split``: a shipped split name (``"ua"``, ``"u1"``), a type (``"ratio"``, ``"loo"``,
        ``"temporal"``, ``"cold_items"``) or a dict; keyword options are split keys
        (``ratios=[0.8, 0.1, 0.1]``, ``order="time"``, ``seed=1``) or ``filter.*`` keys.
        """
        f, y = _config_source(config)
        train, valid, test, protocol = self._core.split(f, y, _split_overrides(split, options))
        return Split(Dataset(train), Dataset(valid), Dataset(test), protocol)

    # -- facts --
    @property
    def name(self) -> str:
        return self._core.name

    @property
    def protocol(self) -> str:
        """How this part was made: dataset | filters | split | part."""
        return self._core.protocol

    @property
    def size(self) -> int:
        """Interactions in this part."""
        return self._core.size

    def __len__(self) -> int:
        return self._core.size

    def item_titles(self) -> List[str]:
        """Titles by item index ("" where the dataset has none, e.g. data from arrays)."""
        return self._core.item_titles()

    def to_pandas(self):
        """This part's interactions as a DataFrame of original ids (user, item[, rating][, timestamp])."""
        import pandas as pd

        c = self._core.columns()
        data = {"user": self.user_ids[c["user"]], "item": self.item_ids[c["item"]]}
        if "rating" in c:
            data["rating"] = np.array(c["rating"])
        if "time" in c:
            data["timestamp"] = np.array(c["time"])
        return pd.DataFrame(data)

    def columns(self) -> Dict[str, np.ndarray]:
        """Dense-index columns (user, item, rating, time) as read-only views (no copy)."""
        return self._core.columns()

    def __repr__(self) -> str:
        return f"Dataset({self.name}: {self.n_users} users x {self.n_items} items, {self.size} interactions; {self.protocol})"


# ---- evaluation ------------------------------------------------------------------------------


class Evaluation(dict):
    """Metric name -> value (``"ndcg@10"``), with the protocol they were measured under.

    Attributes: ``protocol`` (data | filters | split | candidates | exclusions | ties | K), ``kind``
    (ranking, rating, pairs, retrieval), ``users`` (evaluated users' original ids), ``per_user``
    (metric -> numpy array aligned with users, for significance tests), ``seconds``, ``table`` (the
    text ``siamrec evaluate`` prints) and ``json``.
    """

    def __init__(self, d: Dict[str, Any]):
        super().__init__(d["metrics"])
        self.kind: str = d["kind"]
        self.protocol: str = d["protocol"]
        self.users: List[str] = d["users"]
        self.per_user: Dict[str, np.ndarray] = d["per_user"]
        self.seconds: float = d["seconds"]
        self.table: str = d["table"]
        self.json: str = d["json"]

    def __repr__(self) -> str:
        return self.table


# ---- models ----------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar over epochs (tqdm.auto: terminal or notebook); silent when tqdm is missing."""

    def __init__(self, enabled: bool):
        self.bar = None
        self.enabled = enabled
        self.refit = False

    def update(self, e: Dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                self.enabled = False
                return
            self.bar = tqdm(total=e["epochs"], unit="epoch", desc="fit")
        if e.get("refit") and not self.refit:  # the refit on train + validation: a bar of its own
            self.refit = True
            self.bar.close()
            from tqdm.auto import tqdm

            self.bar = tqdm(total=e["epochs"], unit="epoch", desc="refit")
        post = {"loss": f"{e['loss']:.4f}"}
        if "valid" in e:
            post[e["valid_metric"]] = f"{e['valid']:.4f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Model(_IdTables):
    """A siamrec model: ``Model(config, **overrides)``, then :meth:`fit`, :meth:`recommend`, ...

    ``config``: a YAML file path, YAML text or a nested dict (as ``siamrec train --config``);
    overrides are ``"section.key": value`` pairs (``**{"train.lr": 0.002}``) or ``section__key=value``.
    """

    def __init__(self, config: Any = None, **overrides: Any):
        if isinstance(config, _core.Model):  # from load()
            self._core = config
        else:
            pairs = {k.replace("__", "."): v for k, v in overrides.items()}
            f, y = _config_source(config)
            self._core = _core.Model.create(f, y, _overrides(pairs))
        self._user_ids: Optional[np.ndarray] = None
        self._item_ids: Optional[np.ndarray] = None
        self.history: List[Dict[str, Any]] = []

    # -- training --
    def fit(
        self,
        train: Dataset,
        valid: Optional[Dataset] = None,
        progress: bool = True,
        callback: Optional[Callable[[Dict[str, Any]], Optional[bool]]] = None,
        threads: int = 0,
        checkpoint: Optional[str] = None,
        resume: bool = False,
        log: Optional[str] = None,
    ) -> "Model":
        """Trains on ``train`` (early stopping on ``valid`` when given, else as configured).

        Releases the GIL while it runs. ``callback(epoch)`` gets a dict per epoch (epoch, epochs,
        loss, seconds, refit, and valid_metric / valid when validated) and stops training by
        returning False. Ctrl-C (KeyboardInterrupt) stops after the current epoch: the model keeps
        the best weights so far and the KeyboardInterrupt is raised. Returns self.
        """
        if not isinstance(train, Dataset):
            raise ConfigError(f"fit: train must be a siamrec.Dataset, got {type(train).__name__}")
        if valid is not None and not isinstance(valid, Dataset):
            raise ConfigError(f"fit: valid must be a siamrec.Dataset or None, got {type(valid).__name__}")
        if train.size == 0:
            raise DataError(f"fit: the training data has no interactions ({train.protocol})")
        self.history = []
        bar = _Progress(progress)

        def on_epoch(e: Dict[str, Any]) -> bool:
            self.history.append(e)
            bar.update(e)
            if callback is not None:
                r = callback(e)
                return r is None or bool(r)
            return True

        main = threading.current_thread() is threading.main_thread()
        try:
            self._core.fit(
                train._core,
                None if valid is None or valid.size == 0 else valid._core,
                threads,
                on_epoch,
                checkpoint or "",
                resume,
                log or "",
                main,
            )
        finally:
            bar.close()
            self._user_ids = self._item_ids = None
        return self

    def partial_fit(
        self, new_data: "Dataset", epochs: Optional[int] = None, threads: int = 0, log: Optional[str] = None,
        **overrides: Any,
    ) -> Dict[str, Any]:
        """Continues the fitted model on new interactions (incremental update, ``siamrec update``).

        ``new_data`` may hold unseen users and items (any ids): they get rows, started at the mean of
        their known neighbours' vectors (``update.init``); seen ids keep theirs. Content towers read
        new items' side data by id from the model's registered dataset (``data.dataset``). Training mixes the new
        interactions with a seeded replay sample of the known ones (``update.replay_share``) for
        ``epochs`` (default ``update.epochs``). Keyword overrides are config keys
        (``update__replay_share=0.8``, ``**{"train.lr": 0.05}``). Returns the counts; the model's
        ``updates`` lists every update. Counting baselines refit; models that cannot be updated
        raise ConfigError. A failed update leaves the model as it was."""
        sets = _overrides({k.replace("__", "."): v for k, v in overrides.items()})
        if epochs is not None:
            sets.append(f"update.epochs={int(epochs)}")
        try:
            return dict(self._core.update(new_data._core, sets, threads, log or ""))
        finally:
            self._user_ids = self._item_ids = None

    @property
    def updates(self) -> List[Dict[str, Any]]:
        """The update history, oldest first (date, source, counts, seconds)."""
        return [json.loads(r) for r in self._core.updates]

    @property
    def fitted(self) -> bool:
        return self._core.fitted

    # -- facts --
    @property
    def type(self) -> str:
        return self._core.type

    @property
    def config(self) -> str:
        """The resolved config (YAML) the model was built with."""
        return self._core.config_yaml

    @property
    def protocol(self) -> str:
        """The data it was fitted on (dataset | filters | split)."""
        return self._core.protocol

    @property
    def exclude(self) -> str:
        """What ``exclude_seen`` leaves out of recommendations: "train+valid" (default: the user's train
        items and the validation items the model saw without training on them, which is what the
        evaluation excludes), "train" or "none"."""
        return self._core.exclude

    @exclude.setter
    def exclude(self, mode: str) -> None:
        self._core.exclude = mode

    def item_title(self, item: Any) -> str:
        """The title of an item (original id) when the training data had titles, else ""."""
        return self._core.item_title(str(item))

    def _need_fit(self, what: str) -> None:
        if not self._core.fitted:
            raise Error(f"{what}: the model is not fitted: call fit() (or siamrec.load a model file) first")

    def _ids_out(self, table: np.ndarray, idx: np.ndarray) -> np.ndarray:
        out = table[np.where(idx < 0, 0, idx)] if len(table) else np.full(idx.shape, -1)
        if (idx < 0).any():
            out = out.copy()
            out[idx < 0] = -1 if out.dtype != object else ""
        return out

    # -- prediction --
    def recommend(
        self, user_ids: Any, k: int = 10, exclude_seen: bool = True, threads: int = 0
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Top-k items for known users: ``(item_ids, scores)``, each of shape [n_users, k].

        A single id gives shape [k]. Rows with fewer than k candidates are padded with score -inf
        (and item id -1, or "" for string ids). Raises ConfigError (a ValueError) naming an unknown user.
        """
        self._need_fit("recommend")
        one = _scalar(user_ids)
        idx = self._core.user_index(_as_id_array(user_ids), True)
        items, scores = self._core.recommend(idx, int(k), bool(exclude_seen), int(threads))
        ids = self._ids_out(self.item_ids, items)
        return (ids[0], scores[0]) if one else (ids, scores)

    def recommend_from_history(
        self, histories: Sequence[Iterable[Any]], k: int = 10
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Fold-in: top-k for users known only by their item histories (lists of original item ids).

        Unknown item ids are skipped; a history's own items are excluded. Shapes [n, k].
        """
        self._need_fit("recommend_from_history")
        if isinstance(histories, (str, bytes)) or not hasattr(histories, "__iter__"):
            raise ConfigError("recommend_from_history: expected a list of item-id lists")
        hs = []
        for r, h in enumerate(histories):
            if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
                raise ConfigError(f"recommend_from_history: histories[{r}] is not a list of item ids")
            hs.append([str(x) for x in h])
        items, scores, _unknown = self._core.recommend_history(hs, int(k))
        return self._ids_out(self.item_ids, items), scores

    def similar_items(self, item_ids: Any, k: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """The k most similar items to each given item (itself excluded): ``(item_ids, scores)``."""
        self._need_fit("similar_items")
        one = _scalar(item_ids)
        idx = self._core.item_index(_as_id_array(item_ids), True)
        items, scores = self._core.similar(idx, int(k))
        ids = self._ids_out(self.item_ids, items)
        return (ids[0], scores[0]) if one else (ids, scores)

    def score(self, user_ids: Any, item_ids: Any) -> np.ndarray:
        """Scores of (user, item) pairs (rating models: the predicted rating), float32 [n]."""
        self._need_fit("score")
        u = self._core.user_index(_as_id_array(user_ids), True)
        i = self._core.item_index(_as_id_array(item_ids), True)
        return self._core.score(u, i)

    @property
    def user_embeddings(self) -> Optional[np.ndarray]:
        """User embeddings [n_users, dim] as a read-only view of the model's weights (no copy).

        The view stays valid after the model is fitted again or deleted (it keeps those weights
        alive); ``.copy()`` it to modify. None when the model has no user embeddings.
        """
        return self._core.user_embeddings()

    @property
    def item_embeddings(self) -> Optional[np.ndarray]:
        return self._core.item_embeddings()

    # -- evaluation --
    def evaluate(self, test: Dataset, protocol: Any = None, threads: int = 0, **eval_options: Any) -> Evaluation:
        """Evaluates on ``test`` (a part of the data the model was fitted on).

        The protocol is the config's eval section with ``protocol`` (a dict of eval keys) and
        keyword options applied: ``candidates="uniform:100"``, ``k=[10, 20]``, ``exclude_train=True``.
        Returns an :class:`Evaluation` (a dict of metrics with the protocol and per-user arrays).
        """
        if not isinstance(test, Dataset):
            raise ConfigError(f"evaluate: test must be a siamrec.Dataset, got {type(test).__name__}")
        pairs: Dict[str, Any] = {}
        if isinstance(protocol, str):
            pairs["eval.candidates"] = protocol
        elif isinstance(protocol, dict):
            pairs.update(protocol)
        elif protocol is not None:
            raise ConfigError(f"evaluate: protocol must be a dict of eval keys, got {type(protocol).__name__}")
        pairs.update(eval_options)
        pairs = {k if k.startswith("eval.") else "eval." + k: v for k, v in pairs.items()}
        return Evaluation(self._core.evaluate(test._core, _overrides(pairs), int(threads)))

    # -- files --
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the model file atomically (the file ``siamrec train --out`` writes)."""
        self._core.save(os.fspath(path))

    def __repr__(self) -> str:
        if not self.fitted:
            return f"Model({self.type}, not fitted)"
        return f"Model({self.type}: {self.n_users} users x {self.n_items} items; {self.protocol})"


def report(
    runs: Sequence[Union[str, os.PathLike]],
    out: Union[str, os.PathLike],
    labels: Optional[Sequence[str]] = None,
    logs: Optional[Sequence[Union[str, os.PathLike]]] = None,
    log_labels: Optional[Sequence[str]] = None,
    model: Optional[Union[str, os.PathLike]] = None,
    title: str = "siamrec report",
    bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 2024,
    max_points: int = 1500,
    map: str = "both",
    data_dir: str = "",
    threads: int = 0,
    studies: Optional[Sequence[Union[str, os.PathLike]]] = None,
) -> None:
    """Writes the HTML report of evaluation runs (``siamrec report``): one self-contained file.

    ``runs`` are JSON files of :attr:`Evaluation.json` (or ``siamrec evaluate --json``), the first
    being the baseline of the paired tests; ``logs`` are training logs (``Model.fit(log=...)``);
    ``model`` a model file whose item embeddings are mapped (PCA / t-SNE, ``map``); ``studies``
    study files of ``siamrec tune`` (leaderboard, objective by trial, parameter vs objective,
    Pareto front). ``runs`` may be empty when a study is given."""
    _core.write_report(
        [os.fspath(r) for r in runs], os.fspath(out), list(labels or []), [os.fspath(p) for p in (logs or [])],
        list(log_labels or []), os.fspath(model) if model else "", title, bootstrap, level, seed, max_points, map,
        data_dir, threads, [os.fspath(p) for p in (studies or [])])


def load(path: Union[str, os.PathLike]) -> Model:
    """A model file written by :meth:`Model.save` or ``siamrec train --out``."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"model file '{p}' does not exist")
    return Model(_core.Model.load(p))
