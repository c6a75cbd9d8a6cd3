"""Label models: turn a label matrix of rule votes into one label and a confidence per article.

``L`` has one row per article and one column per rule; ``-1`` is an abstain, ``0..K-1`` a vote.

- :class:`MajorityVote`: the most voted label; its share of the votes is the confidence.
- :class:`DawidSkene`: learns, without gold labels, how often each rule votes each label (or
  abstains) given the true label, by EM (Dawid & Skene, 1979); the posterior of the true label
  is the confidence. Abstaining is modelled as an outcome, so a rule that votes one label only
  (a keyword rule) still tells the model something by firing more often on its own label.

Articles no rule voted on get no label (confidence 0), and a label is always one some rule voted
for: the models never guess from priors or abstains alone.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from newsclf.errors import NewsclfError, no_such_parameter
from newsclf.labelling.rules import ABSTAIN

LABEL_MODELS = ("majority", "dawid_skene")


@dataclass
class WeakLabels:
    """One label per article (``-1`` = none), its confidence, and why there is none."""

    labels: np.ndarray  # (n,) int, -1 where unlabelled
    confidence: np.ndarray  # (n,) float in [0, 1]; 0 where unlabelled
    proba: np.ndarray  # (n, K) posterior (rows of zeros where no rule voted)
    reason: list[str]  # "" (labelled), "no_votes" or "tie"


def _check(L: np.ndarray, cardinality: int) -> np.ndarray:
    L = np.asarray(L, dtype=np.int64)
    if L.ndim != 2:
        raise NewsclfError(f"label matrix must be 2-D (articles x rules), got shape {L.shape}")
    if cardinality < 2:
        raise NewsclfError(f"a label model needs at least two labels, got {cardinality}")
    if L.size and (L.min() < ABSTAIN or L.max() >= cardinality):
        raise NewsclfError(f"label matrix values must be -1..{cardinality - 1}")
    return L


def vote_counts(L: np.ndarray, cardinality: int) -> np.ndarray:
    """(n, K) how many rules voted each label for each article."""
    L = _check(L, cardinality)
    counts = np.zeros((L.shape[0], cardinality))
    for j in range(L.shape[1]):
        voted = L[:, j] != ABSTAIN
        np.add.at(counts, (np.nonzero(voted)[0], L[voted, j]), 1)
    return counts


class MajorityVote:
    """The label most rules voted for; a tie between the top labels leaves the article out."""

    def fit(
        self, L: np.ndarray, cardinality: int, weights: np.ndarray | None = None
    ) -> MajorityVote:
        self.cardinality = cardinality
        return self

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        counts = vote_counts(L, self.cardinality)
        total = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)

    def weak_labels(self, L: np.ndarray) -> WeakLabels:
        proba = self.predict_proba(L)
        return _decide(proba)


class DawidSkene:
    """Dawid-Skene EM over rule votes, with abstains as an outcome and Dirichlet smoothing.

    Parameters: ``theta[j, k, v]`` = P(rule j outputs v | true label k), v in labels + abstain;
    ``class_prior[k]``. Initialised from the majority vote; the smoothing prior puts
    ``prior_strength`` pseudo-votes per rule and label, a share ``prior_accuracy`` of them on
    the rule's own labels being right, so a rule counts as better than chance until the data
    say otherwise.
    """

    def __init__(
        self,
        max_iter: int = 200,
        tol: float = 1e-6,
        prior_strength: float = 2.0,
        prior_accuracy: float = 0.7,
        learn_class_prior: bool = False,
    ) -> None:
        self.max_iter = max_iter
        self.tol = tol
        self.prior_strength = prior_strength
        self.prior_accuracy = prior_accuracy
        self.learn_class_prior = learn_class_prior

    def check_params(self) -> None:
        """Raise a one-line NewsclfError for a parameter of the wrong type or out of range: a
        config typo (``max_iter=ten``) fails before the rules run, not as a traceback in EM."""

        def number(v: object) -> bool:
            # inf would pass the range checks (and int(inf) raises); nan fails them silently
            return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

        checks = (
            ("max_iter", "a whole number >= 1", lambda v: number(v) and v == int(v) and v >= 1),
            ("tol", "a number >= 0", lambda v: number(v) and v >= 0),
            ("prior_strength", "a number >= 0", lambda v: number(v) and v >= 0),
            ("prior_accuracy", "a number in (0, 1)", lambda v: number(v) and 0 < v < 1),
            ("learn_class_prior", "true or false", lambda v: isinstance(v, bool)),
        )
        for name, expected, ok in checks:
            if not ok(getattr(self, name)):
                value = getattr(self, name)
                raise NewsclfError(f"dawid_skene: {name}={value!r} must be {expected}")

    def fit(self, L: np.ndarray, cardinality: int, weights: np.ndarray | None = None) -> DawidSkene:
        """EM on the label matrix. ``weights`` (one per row) counts how many articles share the
        row's votes: a corpus compressed to its distinct vote patterns fits the same model in
        memory that does not grow with the corpus."""
        L = _check(L, cardinality)
        self.check_params()
        n, m = L.shape
        K = cardinality
        self.cardinality = K
        outcomes = np.where(L == ABSTAIN, K, L)  # abstain is outcome K
        self._onehot = [np.eye(K + 1)[outcomes[:, j]] for j in range(m)]  # (n, K+1) each
        self._weights = None if weights is None else np.asarray(weights, dtype=float)[:, None]
        # which labels each rule can vote: it never outputs the others
        self.polarity = [sorted(set(L[:, j][L[:, j] != ABSTAIN].tolist())) for j in range(m)]
        prior = self._prior(m, K)
        T = MajorityVote().fit(L, K).predict_proba(L)
        uncovered = T.sum(axis=1) == 0
        T[uncovered] = 1.0 / K
        previous = None
        self.n_iter_ = 0
        while self.n_iter_ < self.max_iter:
            self.n_iter_ += 1
            self._m_step(T, prior)
            T, loglik = self._e_step(n)
            if previous is not None and abs(loglik - previous) <= self.tol * max(1, abs(previous)):
                break
            previous = loglik
        self.log_likelihood_ = loglik
        del self._onehot, self._weights
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        # each rule's learned accuracy: the posterior share of its votes that are right
        self.rule_precision_ = np.full(m, np.nan)
        for j in range(m):
            voted = L[:, j] != ABSTAIN
            if voted.any():
                right = T[voted, L[voted, j]]
                self.rule_precision_[j] = float(
                    right.mean() if weights is None else np.average(right, weights=w[voted])
                )
        return self

    def _prior(self, m: int, K: int) -> np.ndarray:
        """Dirichlet pseudo-counts (m, K, K+1): abstain, right and wrong votes per label."""
        prior = np.zeros((m, K, K + 1))
        s, acc = self.prior_strength, self.prior_accuracy
        for j, labels in enumerate(self.polarity):
            prior[j, :, K] = s / 2  # abstaining: as likely as voting, a priori
            for k in range(K):
                wrong = [v for v in labels if v != k]
                if k in labels:
                    prior[j, k, k] = s / 2 * (acc if wrong else 1.0)
                    for v in wrong:
                        prior[j, k, v] = s / 2 * (1 - acc) / len(wrong)
                elif wrong:
                    for v in wrong:
                        prior[j, k, v] = s / 2 * (1 - acc) / len(wrong)
                        prior[j, k, K] += s / 2 * acc / len(wrong)  # mostly abstains
                else:
                    prior[j, k, K] = s
        return prior

    def _m_step(self, T: np.ndarray, prior: np.ndarray) -> None:
        K = self.cardinality
        if self._weights is not None:
            T = T * self._weights
        counts = np.stack([T.T @ onehot for onehot in self._onehot]) + prior  # (m, K, K+1)
        self.theta_ = self._better_than_random(
            counts / np.maximum(counts.sum(axis=2, keepdims=True), 1e-12)
        )
        if self.learn_class_prior:
            n = T.shape[0] if self._weights is None else self._weights.sum()
            self.class_prior_ = (T.sum(axis=0) + 1.0) / (n + K)
        else:
            self.class_prior_ = np.full(K, 1.0 / K)

    def _better_than_random(self, theta: np.ndarray) -> np.ndarray:
        """A rule votes a label at least as often on articles of that label as on any other
        (what makes it a rule for that label); without this EM may swap what labels mean."""
        K = self.cardinality
        for j, labels in enumerate(self.polarity):
            for v in labels:
                own = theta[j, v, v]
                for k in range(K):
                    if k != v and theta[j, k, v] > own:
                        theta[j, k, K] += theta[j, k, v] - own  # the excess becomes abstains
                        theta[j, k, v] = own
        return theta

    def _log_joint(self, onehots: list[np.ndarray]) -> np.ndarray:
        log_theta = np.log(np.maximum(self.theta_, 1e-300))
        log_joint = np.tile(np.log(self.class_prior_), (onehots[0].shape[0], 1))
        for j, onehot in enumerate(onehots):
            log_joint += onehot @ log_theta[j].T  # (n, K)
        return log_joint

    def _e_step(self, n: int) -> tuple[np.ndarray, float]:
        log_joint = self._log_joint(self._onehot)
        top = log_joint.max(axis=1, keepdims=True)
        log_norm = top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True))
        weighted = log_norm if self._weights is None else log_norm * self._weights
        return np.exp(log_joint - log_norm), float(weighted.sum())

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """Posterior over the true label per article; zeros where no rule voted."""
        L = _check(L, self.cardinality)
        K = self.cardinality
        if L.shape[1] != self.theta_.shape[0]:
            raise NewsclfError(f"label matrix has {L.shape[1]} rules, model {len(self.theta_)}")
        outcomes = np.where(L == ABSTAIN, K, L)
        onehots = [np.eye(K + 1)[outcomes[:, j]] for j in range(L.shape[1])]
        log_joint = self._log_joint(onehots)
        proba = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        proba[(L == ABSTAIN).all(axis=1)] = 0.0
        return proba

    def weak_labels(self, L: np.ndarray) -> WeakLabels:
        """The most probable label among those the article's rules voted for, with its
        posterior as the confidence. Abstains are evidence too, and with few votes they can
        tip a near-uniform posterior toward a label no rule voted for; such a guess would
        come from the abstain pattern alone, so it is not taken (the voted label keeps its
        own, lower posterior)."""
        proba = self.predict_proba(L)
        voted = vote_counts(L, self.cardinality) > 0
        weak = _decide(np.where(voted, proba, 0.0))
        weak.proba = proba
        return weak

    def rule_precision(self) -> np.ndarray:
        """(m,) each rule's learned accuracy on the fitted articles: the posterior probability
        that its votes are right, averaged over its votes (nan for a rule that never voted)."""
        return self.rule_precision_


def _decide(proba: np.ndarray) -> WeakLabels:
    """Labels, confidences and reasons from a posterior; exact ties stay unlabelled."""
    n = proba.shape[0]
    labels = np.full(n, ABSTAIN, dtype=np.int64)
    confidence = np.zeros(n)
    reason = [""] * n
    for i, row in enumerate(proba):
        if row.sum() == 0:
            reason[i] = "no_votes"
            continue
        top = row.max()
        if np.isclose(row, top, rtol=0, atol=1e-9).sum() > 1:
            reason[i] = "tie"
            continue
        labels[i] = int(row.argmax())
        confidence[i] = float(top)
    return WeakLabels(labels=labels, confidence=confidence, proba=proba, reason=reason)


def make_label_model(name: str, **params) -> MajorityVote | DawidSkene:
    """A label model by config name (``majority`` or ``dawid_skene``)."""
    if name == "majority":
        if params:
            raise NewsclfError(f"label model majority takes no parameters, got {sorted(params)}")
        return MajorityVote()
    if name == "dawid_skene":
        known = inspect.signature(DawidSkene).parameters
        for key in params:
            if key not in known:
                problem = no_such_parameter(DawidSkene, key)
                raise NewsclfError(f"weak.label_model_params.{key}: {problem}")
        model = DawidSkene(**params)
        model.check_params()
        return model
    raise NewsclfError(f"weak.label_model: {name!r} is not one of {', '.join(LABEL_MODELS)}")
