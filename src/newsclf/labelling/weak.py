"""Weak labelling of a dataset build: each task's rule set from config (``labeling.<task>``),
the config file it came from, the rules applied and the label model fitted, the labelling
report files, and the weak part of the dataset manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from newsclf.datasets import WeakSummary
from newsclf.labelling import report as labelling_report
from newsclf.labelling.label_model import make_label_model
from newsclf.labelling.rules import RuleSet, label_articles, load_rules
from newsclf.tasks import Task

log = logging.getLogger(__name__)


def load_rule_sets(cfg: DictConfig, tasks: dict[str, Task]) -> dict[str, RuleSet]:
    """The labelling rules of each task that has some (``labeling.<task>``), checked."""
    if not cfg.weak.enabled:
        return {}
    labeling_cfg = cfg.get("labeling") or {}
    for key in sorted(set(labeling_cfg) - set(tasks)):  # e.g. after ~tasks.stance
        log.info("labeling.%s: no such task in this build, its rules are not used", key)
    sets = {}
    for key in tasks:
        if labeling_cfg.get(key) is None:
            continue
        spec = OmegaConf.to_container(labeling_cfg[key], resolve=True)
        file, by_rule = rules_origin(key), command_line_rules(key)
        # the set's own keys (targets, ...) and the report name the command line too when it
        # changed any of them; a rule it did not touch is the file's alone
        changed = by_rule or _overridden(f"labeling.{key}.")
        origin = f"{file} and the command line" if changed else file
        names = (spec or {}).get("rules") or {} if isinstance(spec, dict) else {}
        by_rule = {str(name): by_rule.get(str(name), file) for name in names} | by_rule
        sets[key] = load_rules(spec, tasks[key], origin, rule_origins=by_rule)
    return sets


def _overridden(prefix: str) -> bool:
    """Whether the command line sets or removes a key under ``prefix``."""
    return any(path.startswith(prefix) for path in _override_keys())


def _override_keys() -> list[str]:
    """The keys the command line sets, adds or removes (none outside Hydra)."""
    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:  # not running under Hydra
        return []
    return [o.lstrip("+~").split("=", 1)[0] for o in overrides]


def has_model_rules(cfg: DictConfig) -> bool:
    """Whether any task's rules load a model (then MLflow must be configured first)."""
    for rules in (cfg.get("labeling") or {}).values():
        for spec in ((rules or {}).get("rules") or {}).values():
            if (spec or {}).get("type") == "model":
                return True
    return False


def rules_origin(key: str) -> str:
    """The config file the task's rules came from, for error messages and the report."""
    try:
        runtime = HydraConfig.get().runtime
    except ValueError:  # not running under Hydra
        return f"labeling.{key}"
    choice = runtime.choices.get(f"labeling@labeling.{key}")
    if not choice:
        return f"labeling.{key}"
    package_configs = (Path(__file__).resolve().parent.parent / "configs").resolve()
    for src in runtime.config_sources:
        if src.schema != "file":
            continue
        candidate = (Path(src.path) / "labeling" / f"{choice}.yaml").resolve()
        if candidate.exists():
            if candidate.is_relative_to(package_configs):
                return f"configs/labeling/{choice}.yaml"
            return str(candidate)
    return f"configs/labeling/{choice}.yaml"


def command_line_rules(key: str) -> dict[str, str]:
    """Where each rule of ``labeling.<key>`` that the command line adds or changes came from:
    a rule the config file does not have is not to be looked for there."""
    prefix = f"labeling.{key}.rules."
    origins: dict[str, str] = {}
    for path in _override_keys():
        if path.startswith(prefix):
            name, _, deeper = path.removeprefix(prefix).partition(".")
            if not deeper:  # the whole rule
                origins[name] = f"the command line (labeling.{key})"
            else:  # a key of a rule, perhaps one of the config file's
                origins.setdefault(name, f"{rules_origin(key)} and the command line")
    return origins


def weak_labels(
    cfg: DictConfig, rules: RuleSet, articles, gold: dict[str, str]
) -> tuple[dict[str, tuple[str, float]], dict[str, str], dict]:
    """Weak labels above ``weak.min_confidence``, the report files and the report."""
    labelled = label_articles(articles, rules, label_model(cfg, rules))
    min_conf = float(cfg.weak.min_confidence)
    report = labelling_report.build_report(
        labelled, rules, gold, min_conf, cfg.weak.label_model, rules.origin
    )
    files = {
        "labeling_report.md": labelling_report.render_markdown(report),
        "labeling_report.json": json.dumps(report, indent=2),
        "votes.csv": labelling_report.votes_csv(labelled, rules, gold, min_conf),
    }
    return labelled.selected(min_conf, rules.task.label_names), files, report


def label_model(cfg: DictConfig, rules: RuleSet):
    """The configured label model, with the rule file's Dawid-Skene parameters as defaults."""
    params = cfg.weak.get("label_model_params")
    params = OmegaConf.to_container(params, resolve=True) if params is not None else {}
    if cfg.weak.label_model == "dawid_skene":  # the rule file's defaults, then the command line
        params = {**(rules.dawid_skene or {}), **params}
    return make_label_model(cfg.weak.label_model, **params)


def fit_weak_labels(cfg: DictConfig, rules: RuleSet, votes) -> tuple:
    """The chunked build's weak labels (``newsclf.build``): the label model fitted on the
    task's distinct vote patterns weighted by their counts, the report and its files (votes.csv
    is written with the rows)."""
    from newsclf.build import fit_labels

    fitted = fit_labels(votes, len(rules.task.label_names), label_model(cfg, rules))
    min_conf = float(cfg.weak.min_confidence)
    report = labelling_report.build_report(
        fitted.labelled, rules, fitted.gold, min_conf, cfg.weak.label_model, rules.origin
    )
    files = {
        "labeling_report.md": labelling_report.render_markdown(report),
        "labeling_report.json": json.dumps(report, indent=2),
    }
    return fitted, files, report


def weak_summary(cfg: DictConfig, report: dict | None, n_weak: int) -> WeakSummary | None:
    """The dataset manifest's ``weak`` entry: the settings and how the weak labels did;
    ``n_weak``: the weak rows of the dataset built."""
    if report is None:
        return None
    return WeakSummary(
        rules=report["rules_file"],
        label_model=cfg.weak.label_model,
        min_confidence=float(cfg.weak.min_confidence),
        gold_in_train=bool(cfg.weak.gold_in_train),
        coverage=report["weak"]["coverage"],
        accuracy=report["weak"]["accuracy"],
        n_train=n_weak,
    )
