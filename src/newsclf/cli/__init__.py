"""Thin Hydra entry points: compose the config, call the pipeline stages, print a summary."""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import io
import itertools
import logging
import math
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from newsclf.errors import NewsclfError, first_line, instantiation_problem
from newsclf.launch import interrupt_message, interrupted
from newsclf.redact import redact_text, redact_tree

# Our own progress and summaries replace the libraries' per-file progress bars.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# MLflow's INFO lines ("Validating input example...", "Created version '3'...") repeat what our
# summary says; set MLFLOW_LOGGING_LEVEL=INFO to see them again.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

# At exit, CPython's final garbage collection walks every object MLflow, datasets and
# scikit-learn created: 1.5 s of a 10 s newsclf-train. Frozen objects are skipped; the
# process ends right after, so nothing is lost.
atexit.register(gc.freeze)


def _interrupted_hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    """Ctrl-C anywhere else (importing, composing the config): one line, exit code 130."""
    if not issubclass(exc_type, KeyboardInterrupt):
        _previous_hook(exc_type, exc, tb)
        return
    print(f"{Path(sys.argv[0]).name}: {interrupt_message(exc)}", file=sys.stderr, flush=True)
    os._exit(130)  # after a KeyboardInterrupt Python would kill itself with SIGINT instead


_previous_hook, sys.excepthook = sys.excepthook, _interrupted_hook

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# ${newsclf.seeds:} is the bundled corpus, wherever newsclf is installed.
OmegaConf.register_new_resolver("newsclf.seeds", lambda: str(SEEDS_DIR), replace=True)


class _LazyModule:
    """Stands for a module and imports it when one of its attributes is first used. Not an
    entry of ``sys.modules``: libraries that scan every loaded module (skops, pickle) never
    trigger the import half way through their own."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_import(name: str) -> Any:
    """Module ``name``, imported when first used: ``--help`` and configuration errors then
    answer without importing MLflow, scikit-learn and friends (several seconds)."""
    return sys.modules.get(name) or _LazyModule(name)


@contextmanager
def forked(module: str, function: str, *args: Any) -> Iterator[Callable[[], Any]]:
    """``module.function(*args)`` in a process forked now; yields a function that waits for
    its result (or raises its error). ``module`` is imported in that process only, so its
    imports (MLflow's: a second or two) run beside the caller's on another core. Leaving the
    block ends the process, finished or not (Ctrl-C does not wait for a slow server). Where
    fork is not available the call runs here, at once."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        result = _call(module, function, *args)
        yield lambda: result
        return
    with multiprocessing.get_context("fork").Pool(1, _ignore_ctrl_c) as pool:
        yield pool.apply_async(_call, (module, function, *args)).get


def _call(module: str, function: str, *args: Any) -> Any:
    return getattr(importlib.import_module(module), function)(*args)


def interrupt_once() -> None:
    """Ctrl-C raises KeyboardInterrupt once; a second one, while the job closes its runs, is
    ignored: raised inside a garbage-collection callback it printed "Exception ignored ...
    Traceback" and cut the clean-up short (``kill`` still ends a process that hangs)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _first_interrupt)


def _first_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _ignore_ctrl_c() -> None:
    # Ctrl-C reaches the whole process group: the parent reports it, once
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def fast_help(prog: str, config_name: str) -> Callable:
    """Answer ``--help`` (``-h``) without Hydra's own help, which copies its whole config
    repository once per config group (seconds): the config groups and the composed config
    (overrides on the command line applied), in Hydra's layout. ``--hydra-help`` is Hydra's."""

    def decorate(hydra_main: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(hydra_main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            argv = sys.argv[1:]
            if args or kwargs or not {"--help", "-h"} & set(argv):
                return hydra_main(*args, **kwargs)
            from hydra import compose, initialize_config_dir

            overrides = [a for a in argv if a not in ("--help", "-h")]
            try:
                with initialize_config_dir(str(CONFIG_DIR), version_base="1.3", job_name=prog):
                    cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
            except Exception:  # a bad override: Hydra's help says what is wrong with it
                return hydra_main(*args, **kwargs)
            # the groups this app composes; launchers and sweepers for newsclf-train's sweeps
            used = {str(k).split("@", 1)[0] for k in cfg.hydra.runtime.choices}
            keep = ("hydra/launcher", "hydra/sweeper") if config_name == "train" else ()
            used = {g for g in used if not g.startswith("hydra/") or g in keep}
            options = {g: _options(g) for g in used}
            groups = sorted(f"{g}: {', '.join(o)}" for g, o in options.items() if o)
            with open_dict(cfg):
                del cfg["hydra"]
                for task, rules in (cfg.get("labeling") or {}).items():  # hundreds of lines
                    n = len((rules or {}).get("rules") or {})
                    cfg.labeling[task] = f"<{n} rules: {prog} --cfg job --package labeling>"
            print(
                f"{prog} is powered by Hydra.\n\n== Configuration groups ==\n"
                "Compose your configuration from those groups (group=option)\n\n"
                + "\n".join(groups)
                + "\n\n\n== Config ==\nOverride anything in the config (foo.bar=value)\n\n"
                + OmegaConf.to_yaml(cfg)
                + "\n\nPowered by Hydra (https://hydra.cc)\n"
                "Use --hydra-help to view Hydra specific help\n"
            )
            return None

        return wrapper

    return decorate


def _options(group: str) -> list[str]:
    """The options of a config group: newsclf's own (``configs/<group>/``), or Hydra's and its
    plugins' for ``hydra/...`` groups."""
    if not group.startswith("hydra/"):
        return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # registers the plugins' configs (joblib, optuna, submitit)
    store = ConfigStore.instance().repo.get("hydra", {}).get(group.split("/", 1)[1], {})
    own = [p.stem for p in (CONFIG_DIR / group).glob("*.yaml")]
    names = {str(n).removesuffix(".yaml") for n in store if str(n).endswith(".yaml")}
    return sorted(names | set(own))  # (not the sweeper's subgroups, e.g. optuna's sampler)


def console(**kwargs: Any) -> Any:
    """The rich console summaries print to: the terminal's width, or (output to a file or a
    pipe, COLUMNS unset) wide enough that no table is cut at rich's default of 80 columns."""
    from rich.console import Console

    class LoggedConsole(Console):
        def print(self, *objects: Any, **options: Any) -> None:
            super().print(*objects, **options)
            to_log_file(objects)

    probe = LoggedConsole(**kwargs)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return LoggedConsole(width=100_000, **kwargs)


def to_log_file(objects: Sequence[Any], level: int = logging.INFO) -> None:
    """Copy what a summary prints, as plain text, to the run's log file (Hydra's
    ``outputs/.../<app>.log``, which otherwise holds only log records, not the summaries)."""
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    if not files:
        return
    from rich.console import Console

    plain = Console(file=io.StringIO(), width=200, no_color=True, highlight=False)
    plain.print(*objects)
    text = redact_text(plain.file.getvalue().rstrip())  # as on the console
    record = logging.makeLogRecord(
        {"name": "newsclf", "levelno": level, "levelname": logging.getLevelName(level), "msg": text}
    )
    for handler in files:
        handler.handle(record)


def rate_text(rate: float) -> str:
    """A rate for a summary line: a whole number, one decimal below 10 (a dozen articles in a
    few seconds is not "0 articles/s")."""
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"


def user_errors(prog: str) -> Callable:
    """Turn a NewsclfError, a configuration error or Ctrl-C into one line on stderr and exit
    code 2 (130 for Ctrl-C), never a traceback; mask secrets in Hydra's record of the run."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                redact_output()  # again: a sweep trial may run in a fresh worker process
                redact_hydra_record()
                return fn(*args, **kwargs)
            except KeyboardInterrupt as exc:
                interrupted(prog, exc)
            except Exception as exc:
                problem = user_problem(exc, args[0] if args else None)
                if problem is None:
                    raise
                fail(prog, problem)

        return wrapper

    return decorate


def user_problem(exc: BaseException, cfg: object = None) -> str | None:
    """The one line to show for a user's error (bad input or configuration); None for a bug,
    which keeps its traceback. ``cfg``, the job's config, names the key of an interpolation
    that failed where OmegaConf's error names none (``to_container(resolve=True)``)."""
    if isinstance(exc, NewsclfError):
        return str(exc)
    if isinstance(exc, InstantiationException) and isinstance(
        exc.__cause__, OmegaConfBaseException
    ):
        exc = exc.__cause__
    if isinstance(exc, OmegaConfBaseException):
        if not _key_of(exc) and isinstance(cfg, DictConfig):
            exc.full_key = _unresolvable_key(cfg, exc) or ""
        return config_problem(exc)
    if isinstance(exc, InstantiationException):
        cause = exc.__cause__
        return str(cause) if isinstance(cause, NewsclfError) else instantiation_problem(exc)
    return None


def fail(prog: str, message: str) -> NoReturn:
    logging.getLogger(prog).debug("failed", exc_info=True)
    print(f"{prog}: error: {message}", file=sys.stderr)
    to_log_file([f"{prog}: error: {message}"], logging.ERROR)
    sys.exit(2)


def _key_of(exc: OmegaConfBaseException) -> str | None:
    return getattr(exc, "full_key", None) or getattr(exc, "key", None)


def _unresolvable_key(cfg: DictConfig, exc: OmegaConfBaseException) -> str | None:
    """The full key of the first interpolation in ``cfg`` that fails as ``exc`` did."""
    for path, value in _leaves(OmegaConf.to_container(cfg, resolve=False)):
        if isinstance(value, str) and "${" in value:
            try:
                OmegaConf.select(cfg, path, throw_on_resolution_failure=True)
            except OmegaConfBaseException as other:
                if str(other).splitlines()[:1] == str(exc).splitlines()[:1]:
                    return path
    return None


def _leaves(node: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, node


def config_problem(exc: OmegaConfBaseException) -> str:
    """One line naming the configuration key and what it needs."""
    key = _key_of(exc) or "config"
    if isinstance(exc, MissingMandatoryValue):
        return f"{key}: missing mandatory value; set it on the command line ({key}=...)"
    message = str(getattr(exc, "msg", None) or exc).strip().splitlines()
    return f"{key}: {message[0] if message else type(exc).__name__}"


def check_complete(cfg: DictConfig, key: str) -> None:
    """One line naming every mandatory value (``???``) left unset under ``key`` by its full
    key: the error a nested config would give names only its last part (``path``), and one at
    a time."""
    node = OmegaConf.select(cfg, key, default=None)
    if isinstance(node, DictConfig) and (missing := sorted(OmegaConf.missing_keys(node))):
        if len(missing) == 1:  # keys from the config's root
            problem = f"{missing[0]}: missing mandatory value; set it on the command line"
        else:
            problem = (
                f"{', '.join(missing)}: missing mandatory values; set them on the command line"
            )
        raise NewsclfError(f"{problem} ({' '.join(f'{k}=...' for k in missing)})")


def check_types(cfg: DictConfig, spec: Mapping[str, tuple[tuple[type, ...], str]]) -> None:
    """Each key of ``spec`` (dotted) holds a value of one of its types, else one line naming
    the key and what is allowed (Hydra passes ``n_jobs=abc`` through as a string)."""
    for key, (types, allowed) in spec.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is _ABSENT:
            continue  # not in this config
        typed = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if typed and (value is None or _IN_RANGE.get(allowed, _ANY)(value)):
            continue
        raise NewsclfError(f"{key}: {value!r} is not {allowed}")


_ABSENT = object()
INT = ((int,), "an integer")
POSITIVE = ((int,), "a positive integer")
OPTIONAL_POSITIVE = ((int, type(None)), "a positive integer or null")
NON_NEGATIVE = ((int,), "an integer >= 0 (0: off)")
NUMBER = ((int, float), "a number")
FRACTION = ((int, float), "a number from 0 to 1")
BOOL = ((bool,), "true or false")
PATH = ((str, int), "a path")  # int: Hydra reads a folder named 2024 as a number
_ANY = lambda _: True  # noqa: E731
_IN_RANGE = {  # beyond the type: nan passes "a number" type checks and every comparison
    POSITIVE[1]: lambda v: v >= 1,
    OPTIONAL_POSITIVE[1]: lambda v: v >= 1,
    NON_NEGATIVE[1]: lambda v: v >= 0,
    NUMBER[1]: math.isfinite,
    FRACTION[1]: lambda v: 0 <= v <= 1,  # scores and probabilities (nan fails it too)
    PATH[1]: lambda v: str(v).strip() != "",  # '' (an unset variable) would name the folder
}


# --------------------------------------------------------------------------- console scripts


def console_script(prog: str, hydra_main: Callable[[], Any]) -> Callable[[], Any]:
    """The console entry point around a ``@hydra.main`` function: secrets masked on the
    console and in logs, a working directory Hydra cannot write is one line, and Ctrl-C
    outside the task (while Hydra composes the config) is one line too."""

    @functools.wraps(hydra_main)
    def main() -> Any:
        redact_output()
        interrupt_once()
        logging.getLogger("py4j").setLevel(logging.WARNING)  # Spark's: not its connections' INFO
        problem = (
            _unwritable_working_directory(sys.argv[1:])
            or _broken_yaml(prog, sys.argv[1:])
            or _missing_launcher(sys.argv[1:])
        )
        if problem:
            fail(prog, problem)
        try:
            return hydra_main()
        except KeyboardInterrupt as exc:
            interrupted(prog, exc)
        except ValueError as exc:  # Hydra's check of its flags, raised before any job
            if not str(exc).startswith("Only one of --run, --multirun"):
                raise
            fail(
                prog,
                f"{first_line(exc)}; --cfg job shows one job's config; to see a sweep's, "
                "leave out --multirun and give one value of each swept key",
            )

    return main


def redact_output() -> None:
    """Mask credentials in everything this process prints or logs from now on (once per
    process: the console script's, and each worker's that a sweep launcher starts)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _RedactingStream):
            setattr(sys, name, _RedactingStream(stream))
    _redact_log_records()


class _RedactingStream:
    """A text stream that masks credentials in everything written to it (MLflow prints its
    "View run at <tracking URI>" lines itself, with the URI's password in them)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _redact_log_records() -> None:
    """Every log record's message (console and Hydra's log file) with credentials masked."""
    make = logging.getLogRecordFactory()
    if getattr(make, "newsclf_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it itself
            return record
        safe = redact_text(message)
        if safe != message:
            record.msg, record.args = safe, None
        return record

    factory.newsclf_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _unwritable_working_directory(argv: list[str]) -> str | None:
    """Why Hydra cannot write its run folder under the working directory, if it cannot."""
    if any(a.startswith(("hydra.run.dir=", "hydra.sweep.dir=", "--", "-")) for a in argv):
        return None  # a run folder elsewhere, or --help / --cfg / --multirun (checked by Hydra)
    try:
        with tempfile.TemporaryFile(dir=Path.cwd()):
            pass
    except OSError as exc:
        return (
            f"working directory {Path.cwd()} is not writable ({exc.strerror}); newsclf writes "
            "its run folders (outputs/) and the default MLflow store (mlflow.db) there, so run "
            "it from a writable folder"
        )
    return None


# the cluster launchers' presets and the Hydra plugins they need (the cluster extra)
CLUSTER_LAUNCHERS = {
    "slurm": "hydra_plugins.hydra_submitit_launcher",
    "ray_cluster": "hydra_plugins.hydra_ray_launcher",
}


def _missing_launcher(argv: list[str]) -> str | None:
    """A cluster launcher preset chosen without its Hydra plugin installed: Hydra would say
    only that it "could not load" the plugin's config."""
    import importlib.util

    for arg in argv:
        key, _, value = arg.partition("=")
        plugin = CLUSTER_LAUNCHERS.get(value) if key == "hydra/launcher" else None
        if plugin and importlib.util.find_spec(plugin) is None:
            return (
                f"hydra/launcher={value}: its Hydra launcher plugin ({plugin.split('.')[-1]}) is "
                "not installed; pip install 'newsclf[cluster]'"
            )
    return None


def _broken_yaml(prog: str, argv: list[str]) -> str | None:
    """The first config file of a ``--config-dir`` folder that the command line chooses (the
    app's primary config, ``--config-name``, ``group=option`` and ``group@key=option``) and
    that does not parse, and where: Hydra would print the parser's traceback while composing.
    """
    import yaml

    folders = [b for a, b in itertools.pairwise(argv) if a in ("--config-dir", "-cd")]
    folders += [a.split("=", 1)[1] for a in argv if a.startswith(("--config-dir=", "-cd="))]
    names = [b for a, b in itertools.pairwise(argv) if a in ("--config-name", "-cn")]
    names.append(prog.removeprefix("newsclf-"))
    for arg in argv:
        key, eq, option = arg.lstrip("+~").partition("=")
        group = key.split("@", 1)[0]
        if eq and option and "." not in group and not arg.startswith("-"):  # not a value
            names.append(f"{group}/{option}")
    for folder in map(Path, folders):
        for name in names:
            file = folder / f"{name}.yaml"
            try:
                yaml.safe_load(file.read_text(encoding="utf-8"))
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                what = ": ".join(str(x) for x in (exc.context, exc.problem) if x)
                return f"{file}: not valid YAML ({what}{where})"
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # not there, or Hydra's own error
    return None


def config_dir_options(hydra_cfg: DictConfig) -> list[str]:
    """``--config-dir`` options for the config folders a Hydra run's command line added:
    what a command it starts or suggests needs to find the same configs."""
    options = []
    for source in hydra_cfg.runtime.config_sources:
        if source.provider == "command-line":
            options += ["--config-dir", str(source.path)]
    return options


def redact_hydra_record() -> None:
    """Mask secrets in Hydra's copy of the run's overrides and config (``.hydra/*.yaml``) and,
    in a trial of a ``--multirun``, in the sweep's ``multirun.yaml``."""
    import yaml
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:  # not running under Hydra
        return
    if not hydra_cfg.output_subdir:
        return
    folder = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
    files = [folder / name for name in ("overrides.yaml", "config.yaml", "hydra.yaml")]
    if hydra_cfg.mode == RunMode.MULTIRUN:
        files.append(Path(hydra_cfg.sweep.dir) / "multirun.yaml")
    for file in files:
        try:
            content = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        safe = redact_tree(content)
        if safe != content:
            text = yaml.safe_dump(safe, sort_keys=False, allow_unicode=True)
            file.write_text(text, encoding="utf-8")


def warn_dropped_boilerplate(clean: DictConfig) -> None:
    """A warning when ``clean.boilerplate`` leaves default rules out (it replaces them)."""
    from newsclf.cleaning import dropped_defaults

    dropped = dropped_defaults(clean.get("boilerplate"))
    if dropped:
        logging.getLogger("newsclf").warning(
            "clean.boilerplate replaces the default rules: %s no longer apply (add those you "
            "want to keep beside yours; see DEFAULT_BOILERPLATE in newsclf/cleaning.py)",
            ", ".join(dropped),
        )
