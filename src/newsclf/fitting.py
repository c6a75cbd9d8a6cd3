"""newsclf-train's in-memory fits, started at once beside the job's imports and MLflow set-up:
the splits read with pyarrow alone, their features computed once in worker processes and
shared by the fit, the refit and the evaluation, and fits run in threads (the solvers release
the GIL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as scipy_sparse

from newsclf import batch, models

SPLITS = ("train", "validation", "test")  # newsclf.datasets.SPLITS, without its imports


def read_splits(dataset_dir: str, names: list[str]) -> dict | None:
    """Each split's texts and label names, read from the dataset folder's Arrow files
    (``hf/<split>``, as ``save_to_disk`` writes them) with pyarrow alone, so that the fits
    start before Hugging Face datasets is imported (a second of CPU); None for any other
    layout (the DatasetDict is then read as usual)."""
    import pyarrow as pa

    data = {}
    try:
        for split in SPLITS:
            folder = Path(dataset_dir) / "hf" / split
            state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
            if set(state) & {"_indices_data_files", "_indices_filename"}:
                return None
            texts: list[str] = []
            labels: list[str] = []
            for file in state["_data_files"]:
                with pa.memory_map(str(folder / file["filename"])) as source:
                    table = pa.ipc.open_stream(source).read_all()
                texts += table.column("text").to_pylist()
                labels += [names[i] for i in table.column("label").to_pylist()]
            data[split] = (texts, labels)
    except (OSError, ValueError, KeyError, IndexError, TypeError, pa.ArrowException):
        return None
    return data


class SharedFeatures:
    """The features of each split, computed once (train, then validation, then test) when the
    model's first step learns nothing (see ``models.shares_features``): the fit on train, the
    refit on train + validation and the evaluation all use them, instead of each tokenising
    its texts again. Chunks of texts are vectorised in ``n_jobs`` worker processes, beside the
    imports and MLflow set-up this process does meanwhile (tokenising holds the GIL); a thread
    gathers them. The models are those of plain fits."""

    CHUNK = 1_000  # texts per worker task
    _pools: ClassVar[list] = []  # pools still working (stop_all cancels what they have not started)

    def __init__(self, splits: dict[str, Future]) -> None:
        self.splits = splits

    @classmethod
    def stop_all(cls) -> None:
        while cls._pools:
            cls._pools.pop().shutdown(wait=False, cancel_futures=True)

    @classmethod
    def start(cls, model, data: dict, n_jobs: int = 1) -> SharedFeatures | None:
        if not models.shares_features(model):
            return None
        splits: dict[str, Future] = {s: Future() for s in data}
        chunks = {
            s: [texts[i : i + cls.CHUNK] for i in range(0, len(texts), cls.CHUNK)] or [[]]
            for s, (texts, _) in data.items()
        }
        workers = min(n_jobs, sum(map(len, chunks.values())))
        pool = batch.worker_pool(workers) if workers > 1 else None
        if pool is not None:  # submitted here: the workers fork from this, the main, thread
            cls._pools.append(pool)
            parts = {
                s: [pool.submit(models.front_features, model, c) for c in cs]
                for s, cs in chunks.items()
            }

        def vectorize() -> None:
            try:
                for split, future in splits.items():
                    try:
                        if pool is None:
                            future.set_result(models.front_features(model, data[split][0]))
                        else:
                            future.set_result(_stack([p.result() for p in parts[split]]))
                    except BaseException as exc:
                        future.set_exception(exc)
            finally:
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                    if pool in cls._pools:
                        cls._pools.remove(pool)

        threading.Thread(target=vectorize, name="newsclf-vectorize", daemon=True).start()
        return cls(splits)

    def fit(self, model, data: dict, splits: tuple[str, ...]) -> None:
        """Fit ``model`` on ``splits`` together, as on their texts concatenated in order."""
        parts = [self.splits[s].result() for s in splits]
        features = parts[0] if len(parts) == 1 else scipy_sparse.vstack(parts, format="csr")
        texts = [t for s in splits for t in data[s][0]]
        labels = [y for s in splits for y in data[s][1]]
        models.fit_on_features(model, texts, features, labels)

    def predict(self, model, split: str) -> list:
        """``model.predict`` of the split's texts."""
        return model[1:].predict(self.splits[split].result())


def _stack(parts: list) -> object:
    """Feature rows of consecutive chunks, one matrix (sparse, or dense for dense parts)."""
    if len(parts) == 1:
        return parts[0]
    if all(scipy_sparse.issparse(p) for p in parts):
        return scipy_sparse.vstack(parts, format="csr")
    return np.vstack([p.toarray() if scipy_sparse.issparse(p) else p for p in parts])


def in_thread(fn: Callable, *args: object) -> Future:
    """``fn(*args)`` in a new daemon thread: an error in the main thread ends the process
    without waiting for a solver. ``result()`` of the future raises what ``fn`` raised."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, name=f"newsclf-{fn.__name__}", daemon=True).start()
    return future
