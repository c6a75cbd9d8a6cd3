"""How fast the default labelling rules vote, and where their time goes.

    .venv/bin/python benchmarks/rules_profile.py [--generated 5000] [--profile] [--save DIR]

Loads both tasks' default rule sets (``configs/labeling/{topic,stance}.yaml``) and applies
them, as ``newsclf-dataset`` does (target mentions searched once, then ``RuleSet.apply``), to
the bundled corpus (``seeds/articles``, cleaned with the default cleaner) and to articles
generated from its sentences (``out_of_core.py``'s generator: one long paragraph each).
Prints articles per CPU-second per task and corpus (best of ``--repeats``); ``--profile``
adds the top functions of a cProfile run by own time; ``--save DIR`` writes the label
matrices (``DIR/<corpus>_<task>.npy``) and ``--compare DIR`` checks them against saved ones.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from newsclf.articles import Article, Source, ingest
from newsclf.cleaning import Cleaner
from newsclf.labelling.rules import load_rules
from newsclf.tasks import Task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from out_of_core import SEEDS, _articles, sentence_pools

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("topic", "stance")


def rule_set(name: str):
    """A task's default rule set, as newsclf-dataset loads it."""
    task_cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "task" / f"{name}.yaml"))
    task = Task(name=name, labels=task_cfg["labels"])
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "labeling" / f"{name}.yaml"))
    return load_rules(cfg, task, f"configs/labeling/{name}.yaml"), task


def corpora(n_generated: int) -> dict[str, list[Article]]:
    """The bundled corpus, cleaned, and ``n_generated`` articles made of its sentences."""
    seeds = ingest(Source(path=str(SEEDS / "articles"), format="txt"), Cleaner()).articles
    _, topic = rule_set("topic")
    pools = sentence_pools(topic)
    generated = [
        Article(id=r["id"], title=r["title"], body=r["text"])
        for r in _articles(n_generated, "g", 0, pools, tuple(topic.label_names))
    ]
    return {"seeds": seeds, "generated": generated}


def vote(rules, articles: list[Article]) -> np.ndarray:
    """What newsclf-dataset does per chunk: mentions once, then the label matrix."""
    return rules.apply(articles, rules.mentions_target(articles))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generated", type=int, default=5000, help="generated articles")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs (best is kept)")
    parser.add_argument("--profile", action="store_true", help="cProfile each task on seeds")
    parser.add_argument("--top", type=int, default=15, help="profile rows to print")
    parser.add_argument("--save", type=Path, help="write the label matrices here")
    parser.add_argument("--compare", type=Path, help="compare with matrices saved here")
    args = parser.parse_args()
    sets = {name: rule_set(name)[0] for name in TASKS}
    data = corpora(args.generated)
    differ = 0
    print("| corpus | articles | chars/article | task | articles/CPU-s | ms/article |")
    print("|---|---:|---:|---|---:|---:|")
    for corpus, articles in data.items():
        chars = sum(len(a.text) for a in articles) / len(articles)
        for name, rules in sets.items():
            best = float("inf")
            for _ in range(args.repeats):
                start = time.process_time()
                matrix = vote(rules, articles)
                best = min(best, time.process_time() - start)
            rate = len(articles) / best
            print(
                f"| {corpus} | {len(articles)} | {chars:.0f} | {name} | {rate:,.0f} "
                f"| {1000 / rate:.2f} |"
            )
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                np.save(args.save / f"{corpus}_{name}.npy", matrix)
            if args.compare:
                same = np.array_equal(np.load(args.compare / f"{corpus}_{name}.npy"), matrix)
                differ += not same
                print(f"  {corpus}/{name}: {'identical' if same else 'DIFFERENT'} votes")
    if args.profile:
        for name, rules in sets.items():
            print(f"\ncProfile, {name} rules on seeds (own time):")
            profile = cProfile.Profile()
            profile.runcall(vote, rules, data["seeds"])
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
